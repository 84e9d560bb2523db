/**
 * The compiled agent (dist/services/runtime-agent/src/main.js, the module `npm start` runs; npm run bench
 * builds dist/ first) in its own process on a free loopback port, for the benchmarks that measure what a
 * user gets over HTTP (e2e, store, rss). Its environment is only what the caller gives plus PATH, HOST,
 * PORT and DATA_DIR: nothing of the benchmark's own environment (a KUBECONFIG, say) leaks in.
 *
 * Bounded: a watchdog (a shell loop in its own process group) kills the agent when the benchmark process
 * is gone or after `maxLifetimeSeconds`, and then removes a data directory it was given to clean, so
 * neither outlives a benchmark that crashed or was killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(REPO_ROOT, 'dist/services/runtime-agent/src/main.js');
/** After SIGTERM, how long the agent may drain and close its store before it gets SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;

/** How long one HTTP request of a benchmark client may take before the benchmark gives up on it. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** A module of the compiled agent (dist/), typed by its source: `fromDist<typeof SourceModule>('path/of/it.js')`. */
export function fromDist<Module>(path: string): Promise<Module> {
  return import(new URL(`../dist/${path}`, import.meta.url).href) as Promise<Module>;
}

export interface CompiledAgent {
  /** http://127.0.0.1:port */
  url: string;
  pid: number;
  dataDir: string;
  proc: ChildProcess;
  /** From spawn to the "listening" log line (the store is opened and recovered before it). */
  startMs: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM (SIGKILL after STOP_TIMEOUT_MS), then removes the data directory if this module made it. */
  stop(): Promise<void>;
}

export interface CompiledAgentOptions {
  /** Added to PATH, HOST, PORT, DATA_DIR and LOG_LEVEL=info (and override them). */
  env?: Record<string, string>;
  /** An existing data directory, left in place by stop(); without it a fresh temporary one, removed by stop(). */
  dataDir?: string;
  /** How long it may take to listen. */
  startTimeoutMs?: number;
  /** The watchdog kills it after this long even if nobody stops it. */
  maxLifetimeSeconds: number;
}

/** A temporary directory for a benchmark; the caller removes it. */
export function benchTempDir(kind: string): string {
  return mkdtempSync(join(tmpdir(), `runtime-agent-bench-${kind}-`));
}

/**
 * A process of its own (a shell loop in its own process group) that outlives this one: when this process
 * is gone, or after `maxSeconds`, it kills `pid` (if given and still there); when this process is gone it
 * also removes `dir` (if given). It exits by itself as soon as `pid` has exited.
 */
function watchdog(w: { pid?: number; dir?: string; maxSeconds: number }): void {
  const script = [
    'i=0',
    'while [ "$i" -lt "$MAX" ] && kill -0 "$PARENT" 2>/dev/null; do',
    '  if [ -n "$CHILD" ] && ! kill -0 "$CHILD" 2>/dev/null; then exit 0; fi',
    '  sleep 1; i=$((i+1))',
    'done',
    'if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then kill -9 "$CHILD"; fi',
    'if [ -n "$DIR" ] && ! kill -0 "$PARENT" 2>/dev/null; then sleep 1; rm -rf "$DIR"; fi',
  ].join('\n');
  spawn('/bin/sh', ['-c', script], {
    detached: true,
    stdio: 'ignore',
    env: {
      PATH: process.env.PATH,
      MAX: String(w.maxSeconds),
      PARENT: String(process.pid),
      CHILD: w.pid === undefined ? '' : String(w.pid),
      DIR: w.dir ?? '',
    },
  }).unref();
}

/** Removes `dir` should this process die before it removes the directory itself (within `maxSeconds`). */
export function removeWhenGone(dir: string, maxSeconds: number): void {
  watchdog({ dir, maxSeconds });
}

/** Spawns the compiled agent and resolves once it listens; rejects (and kills it) if it exits or times out first. */
export async function startCompiledAgent(options: CompiledAgentOptions): Promise<CompiledAgent> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? benchTempDir('data');
  const t0 = performance.now();
  const proc = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`could not spawn ${MAIN}`);
  }
  watchdog({ pid: proc.pid, dir: ownDir ? dataDir : undefined, maxSeconds: options.maxLifetimeSeconds });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  let exited = proc.exitCode !== null;
  const exit = once(proc, 'exit').then(() => {
    exited = true;
  });

  const stop = async () => {
    if (!exited) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exit;
      clearTimeout(timer);
    }
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };

  const timeoutMs = options.startTimeoutMs ?? 30_000;
  let port: number | undefined;
  while (port === undefined) {
    const m = /"port":(\d+)/.exec(out);
    if (m) port = Number(m[1]);
    else if (exited) {
      await stop();
      throw new Error(`the agent exited before it listened:\n${out}`);
    } else if (performance.now() - t0 > timeoutMs) {
      await stop();
      throw new Error(`the agent did not listen within ${timeoutMs} ms:\n${out}`);
    } else await new Promise((r) => setTimeout(r, 10));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: proc.pid,
    dataDir,
    proc,
    startMs: performance.now() - t0,
    output: () => out,
    stop,
  };
}

/** CPU time (user + system) the process has used so far, ms, from /proc (10 ms resolution). */
export function processCpuMs(pid: number): number {
  const stat = readProc(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** The machine's load averages (1, 5, 15 min), for printing next to every number. */
export function loadAverage(): string {
  return readProc('/proc/loadavg').split(' ').slice(0, 3).join(' ');
}

/** USER_HZ: the unit of the CPU times in /proc/<pid>/stat (100 on Linux). */
const CLOCK_TICKS = 100;

function readProc(path: string): string {
  return readFileSync(path, 'utf8');
}
