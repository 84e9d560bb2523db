/** The benchmarks' HTTP target: bench/target-server.mjs in its own process, so it does not share the client's core. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface Target {
  /** http://127.0.0.1:port (no trailing slash). */
  url: string;
  proc: ChildProcess;
  /** Requests the target has answered so far. */
  count(): Promise<number>;
}

export async function startTarget(): Promise<Target> {
  const proc = fork(new URL('./target-server.mjs', import.meta.url), [], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const [chunk] = (await once(proc.stdout!, 'data')) as [Buffer];
  const port = Number(String(chunk).trim());
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    async count() {
      proc.send('count');
      const [m] = (await once(proc, 'message')) as [{ count: number }];
      return m.count;
    },
  };
}
