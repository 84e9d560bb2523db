/**
 * Two network namespaces a test creates for traffic control: the agent (and so FlowRunner's traffic) in
 * one, a target HTTP server and an iperf3 server in the other, across a veth pair. The agent is reached on
 * its loopback inside its namespace (curl runs there); iperf3 from the agent's namespace measures what its
 * interface lets through. Needs CAP_NET_ADMIN: setUp() answers false where `ip netns add` is refused.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { MAIN } from './agent-process.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** The agent's port inside its namespace. */
const AGENT_PORT = 18080;
const IPERF_PORT = 5201;
const TARGET_PORT = 8000;

export interface AgentInNs {
  proc: ChildProcess;
  output(): string;
}

export class NetnsLab {
  readonly agentNs: string;
  readonly targetNs: string;
  /** The agent's end of the veth pair (what traffic control shapes). */
  readonly dev: string;
  private readonly targetDev: string;
  readonly targetIp = '10.214.0.1';
  /** The target HTTP server (answers "ok"), in the target's namespace. */
  readonly targetUrl = `http://${this.targetIp}:${TARGET_PORT}`;
  private made = false;
  private readonly helpers: ChildProcess[] = [];

  /** `tag`: one letter that tells this lab's namespaces from another spec's in the same test process. */
  constructor(tag: string) {
    const suffix = `${process.pid % 100000}`;
    this.agentNs = `ra-f${tag}a-${suffix}`;
    this.targetNs = `ra-f${tag}b-${suffix}`;
    this.dev = `r${tag}a${suffix}`;
    this.targetDev = `r${tag}b${suffix}`;
  }

  /** Creates the namespaces, the veth pair and the target's servers; false when the machine allows no netns. */
  async setUp(): Promise<boolean> {
    try {
      ip('netns', 'add', this.agentNs);
      this.made = true;
    } catch {
      return false; // no CAP_NET_ADMIN here: nothing was created
    }
    ip('netns', 'add', this.targetNs);
    ip('link', 'add', this.dev, 'type', 'veth', 'peer', 'name', this.targetDev);
    ip('link', 'set', this.dev, 'netns', this.agentNs);
    ip('link', 'set', this.targetDev, 'netns', this.targetNs);
    ip('-n', this.targetNs, 'addr', 'add', `${this.targetIp}/30`, 'dev', this.targetDev);
    ip('-n', this.agentNs, 'addr', 'add', '10.214.0.2/30', 'dev', this.dev);
    for (const [ns, dev] of [
      [this.targetNs, this.targetDev],
      [this.agentNs, this.dev],
    ] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const server = `require("http").createServer((q, s) => s.end("ok")).listen(${TARGET_PORT}, "${this.targetIp}")`;
    for (const argv of [
      [process.execPath, '-e', server],
      ['iperf3', '--server', '--port', String(IPERF_PORT), '--bind', this.targetIp],
    ])
      this.helpers.push(spawn('ip', ['netns', 'exec', this.targetNs, ...argv], { stdio: 'ignore' }));
    await waitFor(async () => (await this.measureMbps()) > 0, 'iperf3 to answer in the target namespace', 20_000, 200);
    return true;
  }

  /** Stops the target's servers and deletes the namespaces (and with them the veth pair). */
  tearDown(): void {
    for (const h of this.helpers.splice(0)) h.kill('SIGKILL');
    if (!this.made) return;
    for (const ns of [this.agentNs, this.targetNs]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // never created
      }
    }
    this.made = false;
  }

  /** `argv` run inside the agent's namespace, as `ip` takes it. */
  inAgentNs(...argv: string[]): string[] {
    return ['netns', 'exec', this.agentNs, ...argv];
  }

  /** The qdiscs on the agent's interface, as tc shows them. */
  qdiscs(): string {
    return execFileSync('ip', this.inAgentNs('tc', 'qdisc', 'show', 'dev', this.dev), { encoding: 'utf8' });
  }

  /** Whether a qdisc of the agent's (handles f10: and f11:) is on its interface. */
  agentQdisc(): boolean {
    const q = this.qdiscs();
    return / f10: /.test(q) || / f11: /.test(q);
  }

  /** A request to the agent inside its namespace, on its loopback. */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const args = ['curl', '-s', '-m', '30', '-X', method, '-w', '\n%{http_code}'];
    if (body !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(body));
    const { stdout } = await run('ip', this.inAgentNs(...args, `http://127.0.0.1:${AGENT_PORT}${path}`), {
      timeout: 40_000,
    });
    const at = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(at + 1)), body: JSON.parse(stdout.slice(0, at) || 'null') };
  }

  /** Megabits per second iperf3 moves from the agent's namespace to the target's over 3 s (the first one left out). */
  async measureMbps(): Promise<number> {
    const { stdout } = await run(
      'ip',
      this.inAgentNs('iperf3', '-c', this.targetIp, '-p', String(IPERF_PORT), '-t', '3', '-O', '1', '-J'),
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return JSON.parse(stdout).end.sum_received.bits_per_second / 1e6;
  }

  /**
   * Starts the agent inside its namespace with `controlYaml` as its FLOWRUNNER_CONTROL_CONFIG (written in
   * `dir`); `prefix` runs before node (setpriv, to drop a capability). Resolves once it listens.
   */
  async startAgent(dir: string, controlYaml: string, prefix: string[] = []): Promise<AgentInNs> {
    const file = join(dir, 'control.yaml');
    writeFileSync(file, controlYaml);
    const proc = spawn('ip', this.inAgentNs(...prefix, process.execPath, '--import', 'tsx', MAIN), {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        PORT: String(AGENT_PORT),
        HOST: '127.0.0.1',
        DATA_DIR: mkdtempSync(join(dir, 'data-')),
        FLOWRUNNER_CONTROL_CONFIG: file,
        EGRESS_ALLOW_PRIVATE: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`the agent exited: ${out}`);
        return /listening on/.test(out);
      },
      'the agent in its namespace to listen',
      30_000,
    );
    return { proc, output: () => out };
  }
}

/** SIGTERM, and SIGKILL after 15 s; resolves once the agent exited. */
export async function stopAgentInNs(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
