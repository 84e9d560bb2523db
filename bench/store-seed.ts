/**
 * Seeding for the store benchmark (bench/store-scale.ts): executions with their steps, log lines, audit
 * lines, idempotency keys and package texts, written with raw SQL in big transactions into a store file
 * whose schema the agent's own Store class created (the caller opens and closes it once first).
 *
 * Every column written is listed in SEED below and nowhere else. A column added with a default needs
 * nothing here; one without a default, or a new table (an `events` table, say), is one more entry.
 * Row n of a table is a pure function of the execution's number n (pseudo-random, no state), so a store
 * grown in several calls holds the same rows as one seeded in a single call, and a run is repeatable
 * except for the execution ids (random UUIDs, as the agent makes them, so the unique index on id is
 * filled in random order as in a real store).
 *
 * The mix, per execution: one of WORKFLOWS workflows (a few much more common than others), 2–5 api
 * steps, status completed 84%, failed 10%, cancelled 3%, rolled_back 2%, rollback_failed 1%. Only
 * ended statuses: the agent's recovery would requeue a seeded pending or running execution. Every
 * LOG_EVERY-th execution has the log a real run writes (2 lines per step and 2 more), and every
 * LONG_LOG_EVERY-th a log of LONG_LOG_LINES lines. One audit line per execution (POST /execute), and
 * an idempotency key for 5% of them.
 */
import Database from 'better-sqlite3';
import { createHash, randomUUID } from 'node:crypto';

export const WORKFLOWS = 20;
export const LOG_EVERY = 10;
export const LONG_LOG_EVERY = 1000;
export const LONG_LOG_LINES = 1000;
/** Executions per transaction. */
const BATCH = 20_000;
/** Execution n was created this long after the previous one (1,000,000 span about 58 days). */
const SPACING_MS = 5000;
const EPOCH_MS = Date.UTC(2025, 0, 1);

/** A number in [0, 1) from (n, salt): the same every time. */
function rand(n: number, salt: number): number {
  let x = Math.imul(n ^ Math.imul(salt + 1, 0x9e3779b1), 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  x = Math.imul(x ^ (n >>> 7), 0x27d4eb2f);
  x ^= x >>> 15;
  return (x >>> 0) / 2 ** 32;
}

/** Workflow w is picked with weight 1/(w+1): the first few run often, the last rarely. */
const WORKFLOW_CUMULATIVE = (() => {
  const weights = Array.from({ length: WORKFLOWS }, (_, w) => 1 / (w + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0;
  return weights.map((w) => (sum += w / total));
})();

const STATUS_CUMULATIVE: Array<[number, string]> = [
  [0.84, 'completed'],
  [0.94, 'failed'],
  [0.97, 'cancelled'],
  [0.99, 'rolled_back'],
  [1, 'rollback_failed'],
];

export const workflowName = (w: number) => `bench-wf-${String(w).padStart(2, '0')}`;
export const workflowId = (w: number) => `${workflowName(w)}-1.0.0`;
const stepsOf = (w: number) => 2 + (w % 4);
const iso = (ms: number) => new Date(ms).toISOString();

/** The package of workflow w, as the agent stores it (JSON text in package_contents, keyed by its sha256). */
function packageOf(w: number): { hash: string; content: string } {
  const content = JSON.stringify({
    apiVersion: 'wpk/v1',
    kind: 'Workflow',
    metadata: { name: workflowName(w), version: '1.0.0', description: `benchmark workflow ${w}` },
    spec: {
      parameters: { env: { type: 'string', default: 'prod' }, replicas: { type: 'integer', default: 3 } },
      handlers: Array.from({ length: stepsOf(w) }, (_, i) => ({
        name: `s${i}`,
        adapter: 'api',
        action: 'request',
        with: { url: `https://svc-${w}.internal/api/v1/items/${i}`, method: 'GET' },
      })),
    },
  });
  return { hash: createHash('sha256').update(content).digest('hex'), content };
}
const PACKAGES = Array.from({ length: WORKFLOWS }, (_, w) => packageOf(w));

/** Everything about execution n that its rows are made of. */
export interface Execution {
  n: number;
  id: string;
  w: number;
  status: string;
  steps: number;
  /** Index of the failed or cancelled step; steps after it are cancelled. */
  stopAt: number;
  createdMs: number;
  finishedMs: number;
}

export function execution(n: number): Execution {
  const r = rand(n, 1);
  const found = WORKFLOW_CUMULATIVE.findIndex((c) => r < c);
  const w = found === -1 ? WORKFLOWS - 1 : found;
  const s = rand(n, 2);
  const status = (STATUS_CUMULATIVE.find(([c]) => s < c) ?? STATUS_CUMULATIVE[0])[1];
  const steps = stepsOf(w);
  const createdMs = EPOCH_MS + n * SPACING_MS;
  return {
    n,
    id: randomUUID(),
    w,
    status,
    steps,
    stopAt: status === 'completed' ? steps : Math.floor(rand(n, 3) * steps),
    createdMs,
    finishedMs: createdMs + 200 + Math.floor(rand(n, 4) * 4000),
  };
}

/** What step i of execution e ended as. */
function stepStatus(e: Execution, i: number): string {
  if (i < e.stopAt) return 'succeeded';
  if (i > e.stopAt) return 'cancelled';
  return e.status === 'cancelled' ? 'cancelled' : 'failed';
}

const stepError = (e: Execution) =>
  JSON.stringify({
    type: 'http_error',
    message: `GET https://svc-${e.w}.internal/api/v1/items/${e.stopAt} answered 503 Service Unavailable`,
    step: `s${e.stopAt}`,
    details: { status: 503 },
  });

/** Log line `seq` (1-based) of execution e. */
interface LogLine {
  e: Execution;
  seq: number;
  step: string | null;
  level: string;
  message: string;
}

/** What line `seq` of a log of `lines` lines says, as the engine and the api adapter write it. */
function logLine(e: Execution, seq: number, lines: number): LogLine {
  return { e, seq, ...logMessage(e, seq, lines) };
}

function logMessage(e: Execution, seq: number, lines: number): Pick<LogLine, 'step' | 'level' | 'message'> {
  if (seq === 1)
    return { step: null, level: 'info', message: `execution started: ${workflowId(e.w)}, ${e.steps} steps` };
  if (seq === lines)
    return {
      step: null,
      level: e.status === 'completed' ? 'info' : 'error',
      message: e.status === 'completed' ? 'execution completed' : `execution ${e.status}: http_error`,
    };
  const i = Math.min(e.steps - 1, Math.floor(((seq - 2) * e.steps) / Math.max(1, lines - 2)));
  if (seq % 2 === 0)
    return {
      step: `s${i}`,
      level: 'info',
      message: `GET https://svc-${e.w}.internal/api/v1/items/${i} → 200 in ${1 + (seq % 40)} ms`,
    };
  return { step: `s${i}`, level: 'info', message: `step ${stepStatus(e, i)}` };
}

/** One table's rows: the columns written, each a function of the row. */
interface TableSeed<T> {
  table: string;
  columns: Record<string, (row: T) => unknown>;
}

/**
 * The rows written, column by column. Columns left out get their default (executions.dropped_log_lines,
 * for one); seq of executions is given so that execution n is seq n.
 */
const SEED = {
  executions: {
    table: 'executions',
    columns: {
      seq: (e) => e.n,
      id: (e) => e.id,
      workflow_id: (e) => workflowId(e.w),
      workflow_name: (e) => workflowName(e.w),
      status: (e) => e.status,
      dry_run: (e) => (rand(e.n, 5) < 0.05 ? 1 : 0),
      rollback_on_failure: (e) => (e.status.startsWith('roll') || rand(e.n, 6) < 0.1 ? 1 : 0),
      parameters: (e) => JSON.stringify({ env: 'prod', replicas: 1 + (e.n % 5), ticket: `OPS-${e.n % 10_000}` }),
      secret_params: () => '[]',
      package_hash: (e) => PACKAGES[e.w].hash,
      steps_total: (e) => e.steps,
      error: (e) => (e.status === 'completed' ? null : stepError(e)),
      rollback_status: (e) =>
        e.status === 'rolled_back' ? 'succeeded' : e.status === 'rollback_failed' ? 'failed' : null,
      rollback_trigger: (e) => (e.status.startsWith('roll') ? 'automatic' : null),
      created_at: (e) => iso(e.createdMs),
      started_at: (e) => iso(e.createdMs + 2),
      finished_at: (e) => iso(e.finishedMs),
      submitted_by: (e) => (rand(e.n, 7) < 0.7 ? 'ci-pipeline' : 'oncall'),
    },
  } satisfies TableSeed<Execution>,
  steps: {
    table: 'steps',
    columns: {
      execution_id: ([e]) => e.id,
      phase: () => 'main',
      idx: ([, i]) => i,
      name: ([, i]) => `s${i}`,
      adapter: () => 'api',
      action: () => 'request',
      status: ([e, i]) => stepStatus(e, i),
      attempts: ([e, i]) => (i > e.stopAt ? 0 : 1),
      for_step: () => null,
      input: ([e, i]) =>
        i > e.stopAt ? null : JSON.stringify({ url: `https://svc-${e.w}.internal/api/v1/items/${i}`, method: 'GET' }),
      outputs: ([e, i]) =>
        stepStatus(e, i) === 'succeeded'
          ? JSON.stringify({
              status: 200,
              headers: { 'content-type': 'application/json' },
              body: { id: i, ok: true, n: e.n },
            })
          : null,
      outputs_source: ([e, i]) => (stepStatus(e, i) === 'succeeded' ? 'run' : null),
      error: ([e, i]) => (stepStatus(e, i) === 'failed' ? stepError(e) : null),
      started_at: ([e, i]) => (i > e.stopAt ? null : iso(e.createdMs + 3 + i)),
      finished_at: ([e, i]) => (i > e.stopAt ? null : iso(e.createdMs + 40 + i)),
    },
  } satisfies TableSeed<[Execution, number]>,
  logs: {
    table: 'logs',
    columns: {
      execution_id: (l) => l.e.id,
      seq: (l) => l.seq,
      ts: (l) => iso(l.e.createdMs + l.seq),
      level: (l) => l.level,
      step: (l) => l.step,
      stream: () => null,
      message: (l) => l.message,
    },
  } satisfies TableSeed<LogLine>,
  audit: {
    table: 'audit',
    columns: {
      ts: (e) => iso(e.createdMs),
      actor: (e) => (rand(e.n, 7) < 0.7 ? 'ci-pipeline' : 'oncall'),
      role: () => 'executor',
      method: () => 'POST',
      path: () => '/execute',
      status: () => 202,
      execution_id: (e) => e.id,
      remote: () => '127.0.0.1',
      detail: (e) => JSON.stringify({ workflow_id: workflowId(e.w) }),
    },
  } satisfies TableSeed<Execution>,
  idempotency: {
    table: 'idempotency',
    columns: {
      key: (e) => `bench-key-${e.n}`,
      body_hash: (e) => createHash('sha256').update(String(e.n)).digest('hex'),
      execution_id: (e) => e.id,
      created_at: (e) => iso(e.createdMs),
    },
  } satisfies TableSeed<Execution>,
  package_contents: {
    table: 'package_contents',
    columns: { hash: (p) => p.hash, content: (p) => p.content },
  } satisfies TableSeed<{ hash: string; content: string }>,
};

/** How many log lines execution n has (0 for most). */
export function logLines(e: Execution): number {
  if (e.n % LONG_LOG_EVERY === 0) return LONG_LOG_LINES;
  if (e.n % LOG_EVERY === 0) return 2 + 2 * e.steps;
  return 0;
}

/** An INSERT of one row of `seed`'s table and the function that turns a row into its values. */
function inserter<T>(db: Database.Database, seed: TableSeed<T>, verb = 'INSERT'): (row: T) => void {
  const names = Object.keys(seed.columns);
  const fns = Object.values(seed.columns);
  const stmt = db.prepare(
    `${verb} INTO ${seed.table} (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
  );
  return (row) => {
    stmt.run(fns.map((f) => f(row)));
  };
}

export interface SeedCounts {
  executions: number;
  steps: number;
  logs: number;
  audit: number;
  idempotency: number;
}

/**
 * Adds executions from+1 .. to (with everything that belongs to them) to the store file `file`, which the
 * agent's Store must have created and closed. Journal off and synchronous off while seeding (a seed
 * that fails is thrown away), WAL again at the end, as the agent leaves the file.
 */
export function seed(file: string, from: number, to: number): SeedCounts {
  const db = new Database(file);
  const counts: SeedCounts = { executions: 0, steps: 0, logs: 0, audit: 0, idempotency: 0 };
  try {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -524288'); // 512 MB: most of the random-order id and steps indexes stay in memory
    const put = {
      executions: inserter(db, SEED.executions),
      steps: inserter(db, SEED.steps),
      logs: inserter(db, SEED.logs),
      audit: inserter(db, SEED.audit),
      idempotency: inserter(db, SEED.idempotency),
      package_contents: inserter(db, SEED.package_contents, 'INSERT OR IGNORE'),
    };
    db.transaction(() => {
      for (const p of PACKAGES) put.package_contents(p);
    })();
    for (let start = from + 1; start <= to; start += BATCH) {
      const end = Math.min(to, start + BATCH - 1);
      db.transaction(() => {
        for (let n = start; n <= end; n++) {
          const e = execution(n);
          put.executions(e);
          for (let i = 0; i < e.steps; i++) put.steps([e, i]);
          const lines = logLines(e);
          for (let seq = 1; seq <= lines; seq++) put.logs(logLine(e, seq, lines));
          put.audit(e);
          counts.executions++;
          counts.steps += e.steps;
          counts.logs += lines;
          counts.audit++;
          if (rand(n, 8) < 0.05) {
            put.idempotency(e);
            counts.idempotency++;
          }
        }
      })();
    }
    db.pragma('journal_mode = WAL');
    return counts;
  } finally {
    db.close();
  }
}
