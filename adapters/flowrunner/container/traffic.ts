/**
 * Traffic control on one interface with `tc` (iproute2): a bandwidth limit through tbf, added latency
 * through netem (with the tbf under it when both are asked for). The agent's qdiscs carry the handles
 * f10: (root) and f11: (the tbf under netem), so `tc qdisc show` tells them from others. Every failure
 * of tc is turned into a sentence that names what is missing: the netem qdisc, CAP_NET_ADMIN, the
 * interface, or tc itself.
 */
import { AgentError } from '../../errors.js';
import type { FlowLog } from '../control.js';
import { type CommandResult, commandFailure, runArgv } from './command.js';

/** What is applied: 0 means none of it. */
export interface Shaping {
  bandwidth_mbps: number;
  latency_ms: number;
}

export const ROOT_HANDLE = 'f10:';
export const CHILD_HANDLE = 'f11:';
/** How long a packet may wait in the tbf before it is dropped. */
const TBF_LATENCY = '50ms';

/** The tbf's bucket: 10 ms at the rate, at least 16 KiB (a few full-size packets). */
export const burstBytes = (mbps: number) => Math.max(16 * 1024, Math.ceil((mbps * 1_000_000) / 8 / 100));

const tbf = (mbps: number) => [
  'tbf',
  'rate',
  `${Math.round(mbps * 1000)}kbit`,
  'burst',
  String(burstBytes(mbps)),
  'latency',
  TBF_LATENCY,
];

/** The argv lists that put `s` on `dev` (none for nothing to apply), replacing what the agent put there. */
export function shapingCommands(dev: string, s: Shaping): string[][] {
  const base = ['tc', 'qdisc', 'replace', 'dev', dev];
  if (s.latency_ms > 0) {
    const netem = [...base, 'root', 'handle', ROOT_HANDLE, 'netem', 'delay', `${s.latency_ms}ms`, 'limit', '10000'];
    if (s.bandwidth_mbps <= 0) return [netem];
    return [netem, [...base, 'parent', `${ROOT_HANDLE}1`, 'handle', CHILD_HANDLE, ...tbf(s.bandwidth_mbps)]];
  }
  if (s.bandwidth_mbps > 0) return [[...base, 'root', 'handle', ROOT_HANDLE, ...tbf(s.bandwidth_mbps)]];
  return [];
}

export const removeCommand = (dev: string) => ['tc', 'qdisc', 'del', 'dev', dev, 'root', 'handle', ROOT_HANDLE];

/** Which qdiscs a shaping uses, for /api/metrics. */
const kinds = (s: Shaping) => [...(s.latency_ms > 0 ? ['netem'] : []), ...(s.bandwidth_mbps > 0 ? ['tbf'] : [])];

export class TrafficShaper {
  /** What the agent's qdiscs apply now; undefined when none is there. */
  private current?: Shaping;

  constructor(
    readonly dev: string,
    private readonly log: FlowLog,
  ) {}

  get applied(): (Shaping & { qdiscs: string[] }) | undefined {
    return this.current && { ...this.current, qdiscs: kinds(this.current) };
  }

  /** Puts `s` on the interface (nothing for 0 and 0); on a failure nothing of the agent's is left there. */
  async apply(s: Shaping): Promise<void> {
    const commands = shapingCommands(this.dev, s);
    // A change of kind (tbf <-> netem, or the tbf under netem going away) starts from a clean interface.
    if (this.current && (commands.length === 0 || kinds(this.current).join() !== kinds(s).join())) await this.remove();
    for (const argv of commands) {
      const r = await this.tc(argv);
      if (r.exitCode !== 0) {
        this.current = s; // partly applied: remove() takes it away
        await this.remove();
        throw this.failure(argv, r, s);
      }
    }
    this.current = commands.length ? s : undefined;
    if (commands.length) this.log('info', `traffic control on ${this.dev}: ${describe(s)} (${kinds(s).join(' + ')})`);
  }

  /** Takes the agent's qdiscs off the interface; never throws (a failure is logged). */
  async remove(): Promise<void> {
    if (!this.current) return;
    const argv = removeCommand(this.dev);
    try {
      const r = await this.tc(argv);
      // "handle of zero" / "Invalid handle": nothing of the agent's was there any more.
      if (r.exitCode !== 0 && !/handle of zero|Invalid handle|No such file/i.test(r.output))
        this.log('error', `could not remove traffic control from ${this.dev}: ${r.output}`);
      else this.log('info', `traffic control removed from ${this.dev}`);
    } catch (err) {
      this.log('error', `could not remove traffic control from ${this.dev}: ${(err as Error).message}`);
    }
    this.current = undefined;
  }

  private async tc(argv: string[]): Promise<CommandResult> {
    try {
      return await runArgv(argv, this.log, 'tc');
    } catch (err) {
      if (err instanceof AgentError && /not found in PATH|no such file/.test(err.message))
        throw new AgentError(
          'adapter_error',
          "traffic control needs tc (iproute2), which is not installed in the agent's image; install iproute2 or set traffic_control.enabled: false",
          { retryable: false, cause: err },
        );
      throw err;
    }
  }

  private failure(argv: string[], r: CommandResult, s: Shaping): AgentError {
    const what = (message: string) =>
      new AgentError('adapter_error', `${message} (tc said: ${r.output || 'nothing'})`, {
        retryable: false,
        details: { argv, output: r.output },
      });
    if (/qdisc kind is unknown|Unknown qdisc "?netem/i.test(r.output) && argv.includes('netem'))
      return what(
        `latency_ms ${s.latency_ms} needs the netem qdisc, which this kernel does not have (module sch_netem, CONFIG_NET_SCH_NETEM); load sch_netem on the node, or ask for latency 0`,
      );
    if (/qdisc kind is unknown/i.test(r.output))
      return what('the bandwidth limit needs the tbf qdisc, which this kernel does not have (module sch_tbf)');
    if (/Operation not permitted/i.test(r.output))
      return what(
        `traffic control needs the NET_ADMIN capability (CAP_NET_ADMIN), which the agent's process lacks; add NET_ADMIN to the container's capabilities, or set traffic_control.enabled: false`,
      );
    if (/Cannot find device/i.test(r.output))
      return what(
        `the interface ${this.dev} does not exist in the agent's network namespace; set traffic_control.interface to one that does`,
      );
    return commandFailure('tc', argv, r);
  }
}

export const describe = (s: Shaping) =>
  `${s.bandwidth_mbps > 0 ? `${s.bandwidth_mbps} Mbit/s` : 'no bandwidth limit'}, ${s.latency_ms > 0 ? `+${s.latency_ms} ms` : 'no added latency'}`;
