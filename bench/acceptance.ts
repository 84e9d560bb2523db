/**
 * Acceptance throughput: requests/s of POST /execute (small dry-run package)
 * versus GET /health on the same agent process in the same run, both measured
 * with autocannon; ROUNDS rounds, each on a fresh agent, judged on the median
 * ratio. Target: >= 0.3x, and every accepted execution is in the store.
 * The agent is the compiled dist/ that `npm start` runs.
 */
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { STORE_FILE } from '../services/runtime-agent/src/store/store.js';
import { benchTempDir, startCompiledAgent } from './agent.js';
import { median } from './stats.js';

const DURATION_S = 5;
/** Rounds, each on a fresh agent; the verdict is on the median ratio (a neighbour's load spike hits one round). */
const ROUNDS = 3;
const CONNECTIONS = 10;
/** autocannon stops at whichever comes first: the duration or this many requests. */
const MAX_REQUESTS = 100_000;

/** Runs autocannon for DURATION_S, stopping early once MAX_REQUESTS responses came back (autocannon's own `amount` would ignore the duration). */
function cannon(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    let responses = 0;
    const instance = autocannon({ connections: CONNECTIONS, duration: DURATION_S, ...opts }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
    instance.on('response', () => {
      if (++responses === MAX_REQUESTS) instance.stop();
    });
  });
}

/** One round: a fresh agent, GET /health for DURATION_S, then POST /execute for DURATION_S, then the store count. */
async function round(
  body: string,
): Promise<{ healthRps: number; execRps: number; exec: autocannon.Result; stored: number }> {
  const agent = await startCompiledAgent({
    env: { MAX_QUEUED_EXECUTIONS: '1000000', MAX_CONCURRENT_EXECUTIONS: '8' },
    dataDir: benchTempDir('acceptance'),
    maxLifetimeSeconds: 120,
  });
  try {
    await cannon({ url: `${agent.url}/health`, duration: 1 } as autocannon.Options); // warm-up
    const health = await cannon({ url: `${agent.url}/health` });
    const exec = await cannon({
      url: `${agent.url}/execute`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await agent.stop();
    const db = new Database(join(agent.dataDir, STORE_FILE), { readonly: true });
    const stored = (
      db.prepare("SELECT COUNT(*) AS n FROM executions WHERE workflow_id = 'bench-accept-1.0.0'").get() as { n: number }
    ).n;
    db.close();
    // autocannon stops at the duration or the request cap, whichever comes first: divide by the time it really ran.
    return { healthRps: health['2xx'] / health.duration, execRps: exec['2xx'] / exec.duration, exec, stored };
  } finally {
    await agent.stop();
    rmSync(agent.dataDir, { recursive: true, force: true });
  }
}

export async function acceptanceThroughput(): Promise<string> {
  const body = JSON.stringify({
    dry_run: true,
    wpk_content: {
      apiVersion: 'wpk/v1',
      kind: 'Workflow',
      metadata: { name: 'bench-accept', version: '1.0.0' },
      spec: { handlers: [{ name: 'hello', adapter: 'shell', action: 'run', with: { command: ['echo', 'hello'] } }] },
    },
  });
  const lines: string[] = [];
  const ratios: number[] = [];
  let allStored = true;
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round(body);
    const ratio = r.execRps / r.healthRps;
    ratios.push(ratio);
    // autocannon counts only the answers it read before stopping; requests still in flight were accepted too, so the store may hold a few more.
    const accepted = r.exec['2xx'];
    allStored &&= r.stored >= accepted;
    lines.push(
      `  round ${i + 1}: GET /health ${r.healthRps.toFixed(0)} req/s, POST /execute ${r.execRps.toFixed(0)} req/s ` +
        `(${r.exec.non2xx} non-2xx, ${r.exec.errors} errors), ratio ${ratio.toFixed(2)}x; ` +
        `${r.stored} stored for ${accepted} counted 202 answers`,
    );
  }
  const m = median(ratios);
  return (
    `acceptance throughput: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s each, ${ROUNDS} rounds on fresh agents\n` +
    `${lines.join('\n')}\n` +
    `  ratio           median ${m.toFixed(2)}x (target >= 0.30x) ${m >= 0.3 ? 'OK' : 'MISSED'}\n` +
    `  store           ${allStored ? 'every accepted execution stored OK' : 'MISSING SOME'}`
  );
}
