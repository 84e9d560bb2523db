/**
 * What the container-control file adds around a flow: pre_start commands and traffic control before the
 * flow starts, the shaping replaced by an update, and on every end of the flow the traffic control removed
 * and the post_stop commands run. The shaping is the interface's, so one flow holds the container control
 * at a time: the control API's (/api/start) or a workflow step's (flowrunner run and start); another flow
 * that would need it meanwhile is refused (conflict). startFlow (flow-start.ts) is the one caller.
 */
import { AgentError } from '../../errors.js';
import type { FieldProblem } from '../engine/index.js';
import type { FlowLog } from '../control.js';
import { commandFailure, runArgv } from './command.js';
import { type ContainerControlSettings, MAX_BANDWIDTH_MBPS, MAX_LATENCY_MS } from './settings.js';
import { describe, type Shaping, shapingCommands, TrafficShaper } from './traffic.js';

/** pre_start or the traffic control failed: the flow did not start, or (update) runs without shaping. */
export class ContainerControlError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
    this.name = 'ContainerControlError';
  }
}

export type ShapingRead = { ok: true; shaping?: Shaping } | { ok: false; problems: FieldProblem[] };

export class ContainerControl {
  private readonly shaper?: TrafficShaper;
  /** pre_start ran and post_stop has not yet: the flow's end runs post_stop. */
  private prepared = false;
  /** Who holds the container control now (see prepare), in words for the conflict message. */
  private holder?: string;

  constructor(
    readonly settings: ContainerControlSettings,
    private readonly log: FlowLog,
  ) {
    if (settings.trafficControl.enabled) this.shaper = new TrafficShaper(settings.trafficControl.interface, log);
  }

  /**
   * The shaping a start or update body asks for, under the configured keys, in `config` (the primary
   * payload) or next to it. A start without them gets the defaults; an update without them changes
   * nothing (undefined). Undefined too when traffic control is off.
   */
  readShaping(body: unknown, kind: 'start' | 'update'): ShapingRead {
    const tc = this.settings.trafficControl;
    if (!tc.enabled || body === null || typeof body !== 'object' || Array.isArray(body)) return { ok: true };
    const b = body as Record<string, unknown>;
    const inner =
      b.config !== null && typeof b.config === 'object' && !Array.isArray(b.config)
        ? (b.config as Record<string, unknown>)
        : {};
    const problems: FieldProblem[] = [];
    const read = (key: string, max: number): number | undefined => {
      const inConfig = key in inner;
      const v = inConfig ? inner[key] : b[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
        problems.push({
          loc: ['body', ...(inConfig ? ['config'] : []), key],
          msg: `Input should be a number from 0 to ${max} (0: none)`,
          type: 'less_than_equal',
        });
        return undefined;
      }
      return v;
    };
    const bandwidth = read(tc.bandwidthKey, MAX_BANDWIDTH_MBPS);
    const latency = read(tc.latencyKey, MAX_LATENCY_MS);
    if (problems.length) return { ok: false, problems };
    if (kind === 'update') {
      if (bandwidth === undefined && latency === undefined) return { ok: true };
      const now = this.shaper?.applied ?? { bandwidth_mbps: 0, latency_ms: 0 };
      return {
        ok: true,
        shaping: { bandwidth_mbps: bandwidth ?? now.bandwidth_mbps, latency_ms: latency ?? now.latency_ms },
      };
    }
    return {
      ok: true,
      shaping: { bandwidth_mbps: bandwidth ?? tc.defaultBandwidthMbps, latency_ms: latency ?? tc.defaultLatencyMs },
    };
  }

  /** Whether a flow's start and end do anything here: traffic control on, or commands configured. */
  get active(): boolean {
    const s = this.settings;
    return s.trafficControl.enabled || s.preStart.length > 0 || s.postStop.length > 0;
  }

  /**
   * Before a flow starts: pre_start, then the shaping, for `holder` until release(). Throws a conflict when
   * another flow holds it, and ContainerControlError (having undone what it did) when either step fails.
   */
  async prepare(shaping: Shaping | undefined, holder: string): Promise<void> {
    if (!this.active) return;
    if (this.holder !== undefined) throw this.conflict();
    this.holder = holder;
    try {
      await this.runPreStart();
    } catch (err) {
      this.holder = undefined;
      throw err;
    }
    this.prepared = this.settings.preStart.length > 0 || this.settings.postStop.length > 0;
    if (!this.shaper || !shaping) return;
    try {
      await this.shaper.apply(shaping);
    } catch (err) {
      this.log('error', `the flow does not start: ${(err as Error).message}`);
      await this.release();
      throw new ContainerControlError(err as Error);
    }
  }

  /** Throws the conflict prepare would when a flow other than `holder`'s holds the container control now. */
  checkFree(holder: string): void {
    if (this.active && this.holder !== undefined && this.holder !== holder) throw this.conflict();
  }

  private conflict(): AgentError {
    return new AgentError(
      'conflict',
      `the container control (${this.what()}) serves one flow at a time, and ${this.holder} holds it; start this flow once that one ended`,
      { details: { held_by: this.holder } },
    );
  }

  private async runPreStart(): Promise<void> {
    for (const argv of this.settings.preStart) {
      try {
        const r = await runArgv(argv, this.log, 'pre_start', this.timeoutMs);
        if (r.exitCode !== 0 || r.timedOut) throw commandFailure('pre_start command', argv, r, this.timeoutMs);
      } catch (err) {
        const message = `${(err as Error).message.startsWith('pre_start') ? '' : `pre_start command ${JSON.stringify(argv)}: `}${(err as Error).message}`;
        this.log('error', `the flow does not start: ${message}`);
        throw new ContainerControlError(new Error(message, { cause: err }));
      }
    }
  }

  /** /api/update: replaces the shaping of the running flow. On a failure none is left applied. */
  async reshape(shaping: Shaping): Promise<void> {
    try {
      await this.shaper?.apply(shaping);
    } catch (err) {
      this.log('error', `the flow runs without traffic control: ${(err as Error).message}`);
      throw new ContainerControlError(err as Error);
    }
  }

  /** After a flow ends, whatever the way: the shaping removed, then post_stop, and the holder let go. Never throws. */
  async release(): Promise<void> {
    try {
      await this.shaper?.remove();
      if (this.prepared) {
        this.prepared = false;
        await this.runPostStop();
      }
    } finally {
      this.holder = undefined;
    }
  }

  /**
   * For a dry run: what prepare and release would do for `shaping`, as sentences (nothing is run). Empty
   * when the container control does nothing.
   */
  plan(shaping: Shaping | undefined): string[] {
    const s = this.settings;
    const lines = s.preStart.map((argv) => `would run pre_start ${JSON.stringify(argv)}`);
    const commands = shaping && this.shaper ? shapingCommands(this.shaper.dev, shaping) : [];
    if (commands.length && shaping)
      lines.push(
        `would apply traffic control on ${this.shaper!.dev}: ${describe(shaping)} (${commands.map((c) => c.join(' ')).join('; ')}), removed when the flow ends`,
      );
    else if (s.trafficControl.enabled)
      lines.push(
        `would apply no traffic control on ${s.trafficControl.interface} (no bandwidth limit, no added latency)`,
      );
    lines.push(...s.postStop.map((argv) => `would run post_stop ${JSON.stringify(argv)} when the flow ends`));
    return lines;
  }

  private what(): string {
    const s = this.settings;
    return [
      ...(s.trafficControl.enabled ? [`traffic control on ${s.trafficControl.interface}`] : []),
      ...(s.preStart.length || s.postStop.length ? ['pre_start/post_stop commands'] : []),
    ].join(', ');
  }

  private async runPostStop(): Promise<void> {
    for (const argv of this.settings.postStop) {
      try {
        const r = await runArgv(argv, this.log, 'post_stop', this.timeoutMs);
        if (r.exitCode !== 0 || r.timedOut)
          this.log('error', commandFailure('post_stop command', argv, r, this.timeoutMs).message);
      } catch (err) {
        this.log('error', `post_stop command ${JSON.stringify(argv)} could not run: ${(err as Error).message}`);
      }
    }
  }

  private get timeoutMs(): number {
    return this.settings.commandTimeoutSeconds * 1000;
  }

  /** For /api/metrics: whether traffic control is on, where, and what is applied now. */
  report() {
    const tc = this.settings.trafficControl;
    if (!tc.enabled) return { enabled: false };
    return { enabled: true, interface: tc.interface, applied: this.shaper?.applied ?? null };
  }
}
