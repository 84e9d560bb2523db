/** The benchmarks' HTTP target: bench/target-server.mjs in its own process, so it does not share the client's core. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Wpk } from '../services/runtime-agent/src/wpk/types.js';

const START_TIMEOUT_MS = 10_000;

export interface Target {
  /** http://127.0.0.1:port (no trailing slash). */
  url: string;
  proc: ChildProcess;
  /** Requests the target has answered so far. */
  count(): Promise<number>;
  /** When (Date.now()) each connection to the target was opened, in order. */
  connectionsOpened(): Promise<number[]>;
  /** Requests so far, and the bytes of their heads (request line, headers) and bodies as received. */
  bytes(): Promise<{ count: number; headBytes: number; bodyBytes: number }>;
}

export async function startTarget(): Promise<Target> {
  const proc = fork(new URL('./target-server.mjs', import.meta.url), [], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await Promise.race([
      once(proc.stdout!, 'data').then(([chunk]) => Number(String(chunk).trim())),
      once(proc, 'exit').then(([code]) =>
        Promise.reject(new Error(`the benchmark target exited (${code}) before it listened`)),
      ),
      new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`the benchmark target did not listen within ${START_TIMEOUT_MS} ms`)),
            START_TIMEOUT_MS,
          )),
      ),
    ]);
    return {
      url: `http://127.0.0.1:${port}`,
      proc,
      async count() {
        proc.send('count');
        const [m] = (await once(proc, 'message')) as [{ count: number }];
        return m.count;
      },
      async bytes() {
        proc.send('bytes');
        const [m] = (await once(proc, 'message')) as [{ count: number; headBytes: number; bodyBytes: number }];
        return m;
      },
      async connectionsOpened() {
        proc.send('connections');
        const [m] = (await once(proc, 'message')) as [{ opened: number[] }];
        return m.opened;
      },
    };
  } catch (err) {
    proc.kill();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** A package of `steps` api steps, each a GET of `url`: what the engine and end-to-end benchmarks run. */
export function pingPackage(name: string, url: string, steps: number): Wpk {
  return {
    apiVersion: 'wpk/v1',
    kind: 'Workflow',
    metadata: { name, version: '1.0.0' },
    spec: {
      handlers: Array.from({ length: steps }, (_, i) => ({
        name: `s${i}`,
        adapter: 'api',
        action: 'request',
        with: { url },
      })),
    },
  };
}
