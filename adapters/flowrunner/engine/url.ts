/**
 * Where a request step goes (docs/flowrunner.md#flowmaps). With `override_step_url_host`
 * (default) the scheme, host and port come from `flow_target_url` and the step
 * gives only path, query (and fragment, which never goes on the wire). Without
 * it an absolute step URL is used as is and a relative one is appended to
 * `flow_target_url`. `flow_target_dns_override` sends requests for the target's
 * host to that IP, with the original Host header (and TLS server name).
 */
import type { FlowRunnerConfig } from './config.js';

export interface Destination {
  /** What the connection pool connects to: `http://10.0.0.5:8080`. */
  origin: string;
  /** Request target: path and query. */
  path: string;
  /** The URL's host name: what the egress policy judges, also under a DNS override. */
  hostname: string;
  /** The DNS override's IP, where the connection goes instead of the URL's host. */
  address?: string;
  /** Set when the connection goes elsewhere than the URL's host (DNS override). */
  host?: string;
  /** TLS server name for an https DNS override. */
  servername?: string;
}

export class UrlBuilder {
  private readonly target: URL;
  private readonly override: boolean;
  private readonly ip: string | null;
  private readonly cache = new Map<string, Destination>();

  constructor(
    config: Pick<FlowRunnerConfig, 'flow_target_url' | 'override_step_url_host' | 'flow_target_dns_override'>,
  ) {
    this.target = new URL(config.flow_target_url);
    this.override = config.override_step_url_host;
    this.ip = config.flow_target_dns_override;
  }

  /** The destination of a step URL after substitution; the same text always gives the same answer (cached). */
  resolve(stepUrl: string): Destination {
    let d = this.cache.get(stepUrl);
    if (d) return d;
    d = this.build(stepUrl);
    // Rendered URLs may carry extracted values: only short ones are kept, and only so many.
    if (stepUrl.length <= 2048) {
      if (this.cache.size > 5000) this.cache.clear();
      this.cache.set(stepUrl, d);
    }
    return d;
  }

  private build(stepUrl: string): Destination {
    const absolute = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(stepUrl);
    let url: URL;
    if (this.override) {
      // Only path and query of the step count; its scheme, host and port are ignored.
      const step = absolute
        ? new URL(stepUrl)
        : new URL(stepUrl.startsWith('/') ? stepUrl : `/${stepUrl}`, 'http://step.invalid');
      url = new URL(this.target.origin);
      url.pathname = step.pathname;
      url.search = step.search;
    } else if (absolute) {
      url = new URL(stepUrl);
    } else {
      const base = this.target.href.replace(/\/+$/, '');
      url = new URL(stepUrl === '' ? base : `${base}/${stepUrl.replace(/^\/+/, '')}`);
    }
    const path = `${url.pathname}${url.search}`;
    if (this.ip && url.hostname === this.target.hostname) {
      const ipHost = this.ip.includes(':') ? `[${this.ip}]` : this.ip;
      const servername = url.protocol === 'https:' ? url.hostname : undefined;
      return {
        origin: `${url.protocol}//${ipHost}${url.port ? `:${url.port}` : ''}`,
        path,
        hostname: url.hostname,
        address: this.ip,
        host: url.host,
        servername,
      };
    }
    return { origin: url.origin, path, hostname: url.hostname };
  }
}
