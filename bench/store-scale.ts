/**
 * Store at scale (npm run bench -- store): latency of the read API over HTTP, as users get it, while one
 * store grows through SIZES executions (default 0, 10,000, 100,000 and 1,000,000; BENCH_STORE_SIZES=a,b,c
 * to change them). For each size: seed up to it (bench/store-seed.ts: raw SQL in big transactions into
 * the file the agent's own Store class created, so its schema and migrations apply), start the compiled
 * agent (dist/) on it with RETENTION_MAX_EXECUTIONS=0 RETENTION_MAX_AGE_DAYS=0 so nothing is pruned, and
 * send, one at a time over one keep-alive connection, round-robin:
 * - GET /ready, the reference: a route that reads nothing, so its time is the HTTP path alone;
 * - GET /executions: the newest page (50);
 * - GET /executions?status=failed: a common status (10% of executions);
 * - GET /executions?status=running: a status no stored execution has (what a dashboard polls for), so
 *   the list reads every row to find none;
 * - GET /executions?workflow_id=…: a mid-frequency workflow (about 2.5% of executions);
 * - GET /executions?cursor=…: a page deep in the list (the cursor of the execution at 10% of the size);
 * - GET /execute/{id}: the record of a random execution (its steps included);
 * - GET /logs/{id}: the log of a random execution that has one (6–12 lines), and of one with 1000 lines.
 * Each query gets WARM_UP requests, then up to MAX_SAMPLES or QUERY_BUDGET_MS of samples; the table
 * shows p50/p99 in ms per size. Growth is p50 at the largest size over p50 at the first non-empty one:
 * with 100x more rows, about 1x is flat and tens of x is a scan of every row (over GROWS, the verdict
 * line calls it growing). A list reads executions newest first and stops once its page is full, so a
 * filter costs about (page size / share of matching rows) rows: flat for a common status or workflow,
 * every row for one that (almost) never matches. The /ready row says how much the machine's load moved
 * between sizes. Also per size: seeding time, file size, time from spawn to listening (the store is
 * opened and recovered first) and the agent's RSS after the queries.
 *
 * Bounded: sizes and sample counts are fixed, each query has a time budget, every request times out
 * after 30 s and each agent lives at most 600 s; the agent and the store's temporary directory are
 * removed on every exit path (and by bench/agent.ts's watchdogs if the benchmark is killed).
 */
import Database from 'better-sqlite3';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'undici';
import { STORE_FILE } from '../services/runtime-agent/src/store/store.js';
import type * as StoreModule from '../services/runtime-agent/src/store/store.js';
import {
  benchTempDir,
  fromDist,
  loadAverage,
  REQUEST_TIMEOUT_MS,
  removeWhenGone,
  startCompiledAgent,
} from './agent.js';
import { quantile } from './stats.js';
import { LOG_EVERY, LONG_LOG_EVERY, seed, workflowId, type SeedCounts } from './store-seed.js';

const SIZES = (process.env.BENCH_STORE_SIZES ?? '0,10000,100000,1000000').split(',').map(Number);
const WARM_UP = 10;
const MAX_SAMPLES = 300;
const QUERY_BUDGET_MS = 6000;
/** A query whose p50 grew more than this from the first non-empty size to the last is reported as growing. */
const GROWS = 3;
/** Random executions whose record and log are asked for, per size. */
const ID_SAMPLE = 200;

/** What the queries at one size are about. */
interface Subjects {
  ids: string[];
  logIds: string[];
  longLogIds: string[];
  deepCursor: string;
}

interface Query {
  name: string;
  /** The path of request i, or undefined when the store is too small for this query. */
  path: (s: Subjects, i: number) => string | undefined;
}

const cursorOf = (seq: number) => Buffer.from(String(seq)).toString('base64url');
const MID_WORKFLOW = 10;

const QUERIES: Query[] = [
  { name: 'GET /ready (reference)', path: () => '/ready' },
  { name: 'GET /executions', path: () => '/executions' },
  { name: '  ?status=failed', path: () => '/executions?status=failed' },
  { name: '  ?status=running (none)', path: () => '/executions?status=running' },
  {
    name: `  ?workflow_id=${workflowId(MID_WORKFLOW)}`,
    path: () => `/executions?workflow_id=${workflowId(MID_WORKFLOW)}`,
  },
  {
    name: '  ?cursor= (10% from the oldest)',
    path: (s) => (s.deepCursor ? `/executions?cursor=${s.deepCursor}` : undefined),
  },
  { name: 'GET /execute/{id}', path: (s, i) => (s.ids.length ? `/execute/${s.ids[i % s.ids.length]}` : undefined) },
  {
    name: 'GET /logs/{id} (6-12 lines)',
    path: (s, i) => (s.logIds.length ? `/logs/${s.logIds[i % s.logIds.length]}` : undefined),
  },
  {
    name: 'GET /logs/{id} (1000 lines)',
    path: (s, i) => (s.longLogIds.length ? `/logs/${s.longLogIds[i % s.longLogIds.length]}` : undefined),
  },
];

/** Random executions of the first `size` (and ones with logs), read from the store file before the agent locks it. */
function subjects(file: string, size: number): Subjects {
  if (size === 0) return { ids: [], logIds: [], longLogIds: [], deepCursor: '' };
  const db = new Database(file, { readonly: true });
  try {
    const idOf = db.prepare('SELECT id FROM executions WHERE seq = ?').pluck();
    const pick = (every: number, skip?: number) => {
      const out: string[] = [];
      const choices = Math.floor(size / every);
      for (let k = 0; k < Math.min(ID_SAMPLE, choices) * 4 && out.length < ID_SAMPLE; k++) {
        const seq = every * (1 + Math.floor(Math.random() * choices));
        if (skip !== undefined && seq % skip === 0) continue;
        out.push(idOf.get(seq) as string);
      }
      return out;
    };
    return {
      ids: pick(1),
      logIds: pick(LOG_EVERY, LONG_LOG_EVERY),
      longLogIds: pick(LONG_LOG_EVERY),
      deepCursor: cursorOf(Math.max(1, Math.floor(size / 10))),
    };
  } finally {
    db.close();
  }
}

interface SizeResult {
  size: number;
  seedMs: number;
  counts?: SeedCounts;
  fileMb: number;
  startMs: number;
  rssMb: number;
  load: string;
  /** Per query: latencies in ms (empty when not measured), and rows of the last list answer. */
  samples: number[][];
  rows: Array<number | undefined>;
  errors: number;
}

async function measureQueries(url: string, subj: Subjects): Promise<Pick<SizeResult, 'samples' | 'rows' | 'errors'>> {
  const client = new Client(url, {
    pipelining: 1,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  const samples: number[][] = QUERIES.map(() => []);
  const rows: Array<number | undefined> = QUERIES.map(() => undefined);
  const spent = QUERIES.map(() => 0);
  let errors = 0;
  try {
    for (let i = 0; i < WARM_UP + MAX_SAMPLES; i++) {
      let any = false;
      for (const [q, query] of QUERIES.entries()) {
        const path = query.path(subj, i);
        if (path === undefined || spent[q] > QUERY_BUDGET_MS) continue;
        any = true;
        const t0 = performance.now();
        const res = await client.request({ path, method: 'GET' });
        const text = await res.body.text();
        const ms = performance.now() - t0;
        if (res.statusCode !== 200) {
          errors++;
          continue;
        }
        if (i >= WARM_UP) {
          samples[q].push(ms);
          spent[q] += ms;
        }
        if (path.startsWith('/executions')) rows[q] = (JSON.parse(text) as { executions: unknown[] }).executions.length;
      }
      if (!any) break;
    }
  } finally {
    await client.close();
  }
  return { samples, rows, errors };
}

function fileMb(dir: string): number {
  let bytes = 0;
  for (const f of [STORE_FILE, `${STORE_FILE}-wal`]) {
    try {
      bytes += statSync(join(dir, f)).size;
    } catch {
      // no WAL file
    }
  }
  return bytes / 1024 / 1024;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export async function storeAtScale(): Promise<string> {
  const load0 = loadAverage();
  const { Store } = await fromDist<typeof StoreModule>('services/runtime-agent/src/store/store.js');
  const dir = benchTempDir('store');
  removeWhenGone(dir, 3600);
  const home = join(dir, 'home');
  const file = join(dir, STORE_FILE);
  const results: SizeResult[] = [];
  try {
    new Store(dir).close(); // the agent's schema and migrations
    let seeded = 0;
    let seedTotalMs = 0;
    for (const size of SIZES) {
      if (size < seeded) throw new Error(`BENCH_STORE_SIZES must grow: ${SIZES.join(',')}`);
      const t0 = performance.now();
      const counts = size > seeded ? seed(file, seeded, size) : undefined;
      const seedMs = performance.now() - t0;
      seedTotalMs += seedMs;
      seeded = size;
      const subj = subjects(file, size);
      const agent = await startCompiledAgent({
        dataDir: dir,
        env: {
          HOME: home,
          K8S_SERVICE_ACCOUNT_DIR: join(home, 'none'),
          RETENTION_MAX_EXECUTIONS: '0',
          RETENTION_MAX_AGE_DAYS: '0',
        },
        startTimeoutMs: 300_000,
        maxLifetimeSeconds: 600,
      });
      let measured: Awaited<ReturnType<typeof measureQueries>>;
      let rss: number;
      try {
        measured = await measureQueries(agent.url, subj);
        rss = rssMb(agent.pid);
      } finally {
        await agent.stop();
      }
      results.push({
        size,
        seedMs,
        counts,
        fileMb: fileMb(dir),
        startMs: agent.startMs,
        rssMb: rss,
        load: loadAverage(),
        ...measured,
      });
      process.stderr.write(`store: ${size.toLocaleString('en')} executions measured (load average ${loadAverage()})\n`);
    }

    const col = 16;
    const cell = (xs: number[]) =>
      xs.length
        ? `${quantile(xs, 0.5).toFixed(2)}/${quantile(xs, 0.99).toFixed(2)}`.padStart(col)
        : 'n/a'.padStart(col);
    const firstNonEmpty = results.findIndex((r) => r.size > 0);
    const last = results[results.length - 1];
    const lines = [
      `store at scale: read queries over HTTP to the compiled agent, one at a time on one keep-alive connection, p50/p99 ms (up to ${MAX_SAMPLES} samples or ${QUERY_BUDGET_MS / 1000} s per query and size, after ${WARM_UP} warm-up)`,
      `  ${'executions'.padEnd(36)}${results.map((r) => r.size.toLocaleString('en').padStart(col)).join('')}   growth`,
    ];
    const flat: string[] = [];
    const growing: string[] = [];
    for (const [q, query] of QUERIES.entries()) {
      const first = firstNonEmpty === -1 ? undefined : results[firstNonEmpty].samples[q];
      let growth = '';
      if (first?.length && last.samples[q].length && last !== results[firstNonEmpty]) {
        const g = quantile(last.samples[q], 0.5) / quantile(first, 0.5);
        growth = `${g.toFixed(1)}x`;
        if (q > 0) (g > GROWS ? growing : flat).push(query.name.trim());
      }
      lines.push(`  ${query.name.padEnd(36)}${results.map((r) => cell(r.samples[q])).join('')}   ${growth}`);
    }
    const row = (name: string, f: (r: SizeResult) => string) =>
      `  ${name.padEnd(36)}${results.map((r) => f(r).padStart(col)).join('')}`;
    lines.push(
      row('rows in list answers', (r) =>
        QUERIES.map((_, q) => r.rows[q])
          .filter((x) => x !== undefined)
          .join(','),
      ),
      row('samples (min over queries)', (r) =>
        String(Math.min(...r.samples.filter((s) => s.length).map((s) => s.length))),
      ),
      row('seeding to this size, s', (r) => (r.seedMs / 1000).toFixed(1)),
      row('store file, MB', (r) => r.fileMb.toFixed(0)),
      row('agent start to listening, ms', (r) => r.startMs.toFixed(0)),
      row('agent RSS after the queries, MB', (r) => r.rssMb.toFixed(0)),
      row('non-200 answers', (r) => String(r.errors)),
      row('load average (1 min) after', (r) => r.load.split(' ')[0]),
    );
    const total = results.reduce(
      (t, r) => {
        for (const k of Object.keys(t) as Array<keyof SeedCounts>) t[k] += r.counts?.[k] ?? 0;
        return t;
      },
      { executions: 0, steps: 0, logs: 0, audit: 0, idempotency: 0 } as SeedCounts,
    );
    lines.push(
      `  seeding         ${(seedTotalMs / 1000).toFixed(1)} s in all for ${total.executions.toLocaleString('en')} executions, ${total.steps.toLocaleString('en')} steps, ${total.logs.toLocaleString('en')} log lines, ${total.audit.toLocaleString('en')} audit lines, ${total.idempotency.toLocaleString('en')} idempotency keys; store file ${last.fileMb.toFixed(0)} MB`,
      `  verdict         flat (p50 grew at most ${GROWS}x): ${flat.join(', ') || 'none'}; grows with the store: ${growing.join(', ') || 'none'}`,
      `  load average    ${load0} before, ${loadAverage()} after`,
    );
    return lines.join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
