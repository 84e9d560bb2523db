/**
 * The destinations of a flow that are known before it runs, judged by the
 * egress policy, so that a refused flow fails at once with `forbidden` and
 * sends nothing: the target (by name and, for a run, after DNS, or its DNS
 * override address) and, with override_step_url_host false, every absolute
 * step URL whose host is written out. Hosts rendered from variables are only
 * known at run time; there the policy refuses the request (a request error of
 * its step, not retried) before it connects.
 */
import type { EgressPolicy } from '../shared/egress.js';
import { EgressRefusal } from '../shared/egress-refusal.js';
import { requestSteps, type Flowmap, type FlowRunnerConfig } from './engine/index.js';

/** Host names to resolve, after the checks that need no DNS passed; throws the first refusal. */
function hostsToResolve(config: FlowRunnerConfig, flowmap: Flowmap, policy: EgressPolicy): string[] {
  const target = new URL(config.flow_target_url).hostname;
  const override = config.flow_target_dns_override;
  const hosts = new Set<string>();
  if (override) policy.checkAddress(target, override);
  else hosts.add(target);
  if (!config.override_step_url_host) {
    for (const step of requestSteps(flowmap.steps)) {
      const host = writtenHost(step.url);
      // The override sends the target's own host name to its address, judged above.
      if (host !== undefined && !(override && host === target)) hosts.add(host);
    }
  }
  for (const h of hosts) policy.checkHost(h);
  return [...hosts];
}

/** Throws EgressRefusal (forbidden) when a destination known up front is refused, names judged after DNS. */
export async function checkFlowDestinations(
  config: FlowRunnerConfig,
  flowmap: Flowmap,
  policy: EgressPolicy,
): Promise<void> {
  for (const host of hostsToResolve(config, flowmap, policy)) await policy.checkResolved(host);
}

/** For dry runs: the refusal the run would meet without asking DNS, if any. */
export function refusalWithoutDns(
  config: FlowRunnerConfig,
  flowmap: Flowmap,
  policy: EgressPolicy,
): EgressRefusal | undefined {
  try {
    hostsToResolve(config, flowmap, policy);
    return undefined;
  } catch (err) {
    if (err instanceof EgressRefusal) return err;
    throw err;
  }
}

/** The host of an absolute step URL, unless templates render any of it. */
function writtenHost(stepUrl: string): string | undefined {
  const authority = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(stepUrl)?.[1];
  if (authority === undefined || authority.includes('{{')) return undefined;
  try {
    return new URL(`http://${authority}`).hostname;
  } catch {
    return undefined; // the run reports the URL as invalid
  }
}
