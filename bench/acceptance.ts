/**
 * Acceptance throughput: requests/s of POST /execute (small dry-run package)
 * versus GET /health on the same agent process in the same run, both measured
 * with autocannon. Target: >= 0.3x, and every accepted execution is in the store.
 * The agent is the compiled dist/ that `npm start` runs.
 */
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { STORE_FILE } from '../services/runtime-agent/src/store/store.js';
import { benchTempDir, startCompiledAgent } from './agent.js';

const DURATION_S = 5;
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

export async function acceptanceThroughput(): Promise<string> {
  const agent = await startCompiledAgent({
    env: { MAX_QUEUED_EXECUTIONS: '1000000', MAX_CONCURRENT_EXECUTIONS: '8' },
    dataDir: benchTempDir('acceptance'),
    maxLifetimeSeconds: 120,
  });
  const body = JSON.stringify({
    dry_run: true,
    wpk_content: {
      apiVersion: 'wpk/v1',
      kind: 'Workflow',
      metadata: { name: 'bench-accept', version: '1.0.0' },
      spec: { handlers: [{ name: 'hello', adapter: 'shell', action: 'run', with: { command: ['echo', 'hello'] } }] },
    },
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
    const accepted = exec['2xx'];
    // autocannon stops at the duration or the request cap, whichever comes first: divide by the time it really ran.
    const healthRps = health['2xx'] / health.duration;
    const execRps = accepted / exec.duration;
    await agent.stop();
    const db = new Database(join(agent.dataDir, STORE_FILE), { readonly: true });
    const stored = (
      db.prepare("SELECT COUNT(*) AS n FROM executions WHERE workflow_id = 'bench-accept-1.0.0'").get() as { n: number }
    ).n;
    db.close();
    const ratio = execRps / healthRps;
    return (
      `acceptance throughput: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s each\n` +
      `  GET /health     ${healthRps.toFixed(0)} req/s\n` +
      `  POST /execute   ${execRps.toFixed(0)} req/s accepted (202), ${exec.non2xx} non-2xx, ${exec.errors} errors\n` +
      `  ratio           ${ratio.toFixed(2)}x (target >= 0.30x) ${ratio >= 0.3 ? 'OK' : 'MISSED'}\n` +
      // autocannon counts only the answers it read before stopping; requests still in flight were accepted too, so the store may hold a few more.
      `  store           ${stored} stored for ${accepted} counted 202 answers ${stored >= accepted ? 'OK' : 'MISSING SOME'}`
    );
  } finally {
    await agent.stop();
    rmSync(agent.dataDir, { recursive: true, force: true });
  }
}
