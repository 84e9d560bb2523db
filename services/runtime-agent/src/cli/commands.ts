/**
 * The CLI's commands: each reads its flags, calls the agent's HTTP API (the same service every surface
 * uses) and prints. Types come from the schemas the agent's answers are checked against (http/schemas.ts).
 */
import { readFileSync } from 'node:fs';
import type { Static } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import type { Problem } from '../../../../adapters/errors.js';
import type * as S from '../http/schemas.js';
import { parseTime } from '../service/filters.js';
import { CliError, type Client, EXIT } from './client.js';
import { ago, duration, type Format, type Out, printData, status, table, took } from './output.js';

type Record_ = Static<typeof S.ExecutionRecord>;
type Summary = Static<typeof S.ExecutionSummary>;
type Accepted = Static<typeof S.Accepted>;
type LogLine = Static<typeof S.LogPage>['logs'][number];
type JournalEvent = Static<typeof S.EventPage>['events'][number];

/** One agent of a fleet (--selector): its pod, and the client that reaches it. */
export interface FleetMember {
  pod: string;
  client: Client;
}

export interface Ctx {
  client: Client;
  /** With --selector: every agent the selector picked (list, get and events merge their answers). */
  fleet?: FleetMember[];
  out: Out;
  format: Format;
  /** The flags of the command, as parsed. */
  flags: Record<string, string | boolean | string[] | undefined>;
  args: string[];
  readStdin(): string;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []);

/** `key=value` flags; a value that reads as JSON (a number, true, an object) is that, else the text. */
export function parseParams(ctx: Ctx): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  const file = str(ctx.flags['param-file']);
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = parseYaml(file === '-' ? ctx.readStdin() : readFileSync(file, 'utf8'));
    } catch (err) {
      throw new CliError(`--param-file ${file}: ${(err as Error).message.split('\n')[0]}`, EXIT.usage);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new CliError(`--param-file ${file} must hold an object of parameter names and values`, EXIT.usage);
    }
    params = { ...(parsed as Record<string, unknown>) };
  }
  for (const p of list(ctx.flags.param)) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new CliError(`-p ${p}: give it as name=value`, EXIT.usage);
    const raw = p.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // text
    }
    params[p.slice(0, eq)] = value;
  }
  return params;
}

/** An execution id, or `@latest`: the newest execution. */
async function resolveId(ctx: Ctx, arg: string | undefined): Promise<string> {
  if (arg === undefined) throw new CliError('name the execution: an id, or @latest', EXIT.usage);
  if (arg !== '@latest') return arg;
  const page = await ctx.client.get<{ executions: Summary[] }>('/executions?limit=1');
  if (page.executions.length === 0) throw new CliError('there is no execution yet', EXIT.notFound);
  return page.executions[0].execution_id;
}

/** The package of -f (a path, or - for stdin), as text: the agent takes YAML or JSON. */
function packageText(ctx: Ctx): string | undefined {
  const file = str(ctx.flags.file);
  if (file === undefined) return undefined;
  if (file === '-') return ctx.readStdin();
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new CliError(`-f ${file} ${why}`, EXIT.usage);
  }
}

function packageRef(ctx: Ctx): { workflow_id?: string; wpk_content?: string } {
  const text = packageText(ctx);
  const workflow = str(ctx.flags.workflow);
  if (text === undefined && workflow === undefined) {
    throw new CliError('name the package: -f FILE (or - for stdin) or --workflow ID', EXIT.usage);
  }
  return { ...(workflow !== undefined && { workflow_id: workflow }), ...(text !== undefined && { wpk_content: text }) };
}

/** The exit code of an execution's end: 0 when it completed, 1 otherwise. */
function outcome(s: string | null): number {
  return s === 'completed' ? EXIT.ok : EXIT.failed;
}

/**
 * Follows an execution until its work in the agent ends (rollback included), reading its log from the
 * first line: nothing is missed however late the stream opens. Prints the lines when `print`; at a
 * terminal otherwise a progress line. Resolves with the final status.
 */
async function untilEnd(ctx: Ctx, id: string, print: boolean, timeoutMs?: number): Promise<string | null> {
  const { out, client } = ctx;
  let final: string | null | undefined;
  const abort = new AbortController();
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => abort.abort(), timeoutMs);
  const started = out.now();
  let progress: NodeJS.Timeout | undefined;
  if (!print && out.tty && ctx.format === 'table') {
    const show = async () => {
      const r = await client.get<Record_>(`/execute/${id}`).catch(() => undefined);
      if (!r || final !== undefined) return;
      const step = r.current_step ?? (r.status === 'rolling_back' ? 'rolling back' : '-');
      out.write(
        `\r\u001b[K${status(out, r.status)}  step ${Math.min(r.steps_completed + 1, r.steps_total)} of ${r.steps_total}  ${step}  ${duration(out.now() - started)}`,
      );
    };
    progress = setInterval(() => void show(), 1000);
    void show();
  }
  try {
    await client.stream(
      `/logs/${encodeURIComponent(id)}?follow=true`,
      (e) => {
        if (e.type === 'log' && print) out.write(logLine(ctx, e.data as LogLine));
        if (e.type === 'end') {
          final = (e.data as { status: string | null }).status;
          return true;
        }
      },
      abort.signal,
    );
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
    if (progress) out.write('\r\u001b[K');
  }
  if (final === undefined) {
    if (abort.signal.aborted) {
      throw new CliError(`execution ${id} has not ended after ${str(ctx.flags.timeout)}`, EXIT.failed);
    }
    final = (await client.get<Record_>(`/execute/${id}`)).status;
  }
  return final;
}

function logLine(ctx: Ctx, l: LogLine): string {
  const ts = ctx.flags.timestamps ? `${l.ts} ` : '';
  const step = l.step ? `[${l.step}] ` : '';
  const level = l.level === 'warn' || l.level === 'error' ? `${l.level.toUpperCase()} ` : '';
  return `${ts}${step}${level}${l.message}\n`;
}

/** Text for a person (a table, or lines): log lines and status lines are printed only then. */
const forPerson = (format: Format) => format === 'table' || format === 'wide';

/**
 * After an accepted execution (or a rollback): print it, then wait or follow as asked. With -o json or yaml
 * and --wait or --follow, what is printed is the record as it ended. Returns the final status, or undefined
 * when not asked to wait.
 */
async function accepted(ctx: Ctx, id: string, answer: unknown, line: string): Promise<string | null | undefined> {
  const { out, format } = ctx;
  const follow = ctx.flags.follow === true;
  const waiting = follow || ctx.flags.wait === true;
  if (format === 'name') out.write(`${id}\n`);
  else if (forPerson(format)) out.write(`${line}\n`);
  else if (!waiting) printData(out, format, answer);
  if (!waiting) return undefined;
  const end = await untilEnd(ctx, id, follow && forPerson(format));
  if (forPerson(format)) out.write(`execution ${id} ${status(out, end ?? 'unknown')}\n`);
  else if (format !== 'name')
    printData(out, format, await ctx.client.get<Record_>(`/execute/${encodeURIComponent(id)}`));
  return end;
}

async function afterAccepted(ctx: Ctx, answer: Accepted & Record<string, unknown>, verb: string): Promise<number> {
  const id = answer.execution_id;
  const end = await accepted(ctx, id, answer, `execution ${id} ${verb} (${answer.status})`);
  return end === undefined ? EXIT.ok : outcome(end);
}

// --- commands -----------------------------------------------------------------------------------------

export async function submit(ctx: Ctx): Promise<number> {
  const body: Record<string, unknown> = { ...packageRef(ctx), parameters: parseParams(ctx) };
  if (ctx.flags['dry-run']) body.dry_run = true;
  const key = str(ctx.flags['idempotency-key']);
  const r = await ctx.client.post<Accepted>('/execute', body, key ? { 'idempotency-key': key } : {});
  return afterAccepted(ctx, r.body, r.status === 200 ? 'already submitted with this key' : 'submitted');
}

export async function validate(ctx: Ctx): Promise<number> {
  const body: Record<string, unknown> = { ...packageRef(ctx) };
  if (ctx.flags.param !== undefined || ctx.flags['param-file'] !== undefined) body.parameters = parseParams(ctx);
  const { body: report } = await ctx.client.post<Static<typeof S.ValidationReport>>('/validate', body);
  if (!printData(ctx.out, ctx.format, report)) {
    ctx.out.write(`${report.workflow_id ?? 'the package'}: ${report.valid ? 'valid' : 'invalid'}\n`);
    for (const p of report.errors) ctx.out.write(`  error    ${p.path}: ${p.message}\n`);
    for (const p of report.warnings) ctx.out.write(`  warning  ${p.path}: ${p.message}\n`);
  }
  return report.valid ? EXIT.ok : EXIT.usage;
}

export async function workflows(ctx: Ctx): Promise<number> {
  const id = ctx.args[0];
  if (id !== undefined) {
    const w = await ctx.client.get<Static<typeof S.WorkflowDetail>>(`/workflows/${encodeURIComponent(id)}`);
    if (ctx.format === 'name') ctx.out.write(`${w.workflow_id}\n`);
    else if (!printData(ctx.out, ctx.format, w)) ctx.out.write(describeWorkflow(w));
    return EXIT.ok;
  }
  const { workflows: ws } = await ctx.client.get<Static<typeof S.WorkflowList>>('/workflows');
  if (ctx.format === 'name') ctx.out.write(ws.map((w) => `${w.workflow_id}\n`).join(''));
  else if (!printData(ctx.out, ctx.format, ws)) {
    const rows = ws.map((w) => [
      w.workflow_id,
      w.source,
      paramNames(w.parameters),
      ...(ctx.format === 'wide' ? [w.adapters.join(','), w.rollback_enabled ? 'yes' : 'no'] : []),
      w.description ?? '',
    ]);
    const wide = ctx.format === 'wide' ? ['ADAPTERS', 'ROLLBACK'] : [];
    ctx.out.write(table(['WORKFLOW', 'SOURCE', 'PARAMETERS', ...wide, 'DESCRIPTION'], rows));
  }
  return EXIT.ok;
}

/** Parameter names; required ones without a default end with `*`. */
function paramNames(params: Record<string, Record<string, unknown>>): string {
  const names = Object.entries(params).map(([n, p]) => (p.required && p.default === undefined ? `${n}*` : n));
  return names.length ? names.join(',') : '-';
}

function describeWorkflow(w: Static<typeof S.WorkflowDetail>): string {
  const lines = [`${w.workflow_id}  (${w.source})`, w.description ?? '', '', 'parameters:'];
  for (const [name, def] of Object.entries(w.parameters)) {
    const p = def as Record<string, unknown>;
    const bits = [String(p.type ?? '')];
    if (p.required) bits.push('required');
    if (p.default !== undefined) bits.push(`default ${JSON.stringify(p.default)}`);
    if (p.secret) bits.push('secret');
    lines.push(`  ${name}: ${bits.join(', ')}${p.description ? ` — ${p.description}` : ''}`);
  }
  lines.push('', `steps: ${w.steps.join(' → ')}`, `adapters: ${w.adapters.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

export async function listExecutions(ctx: Ctx): Promise<number> {
  const q = new URLSearchParams();
  const statuses = list(ctx.flags.status);
  if (ctx.flags.failed) statuses.push('failed', 'rolled_back', 'rollback_failed');
  if (ctx.flags.running) statuses.push('pending', 'running', 'rolling_back');
  if (statuses.length) q.set('status', [...new Set(statuses)].join(','));
  for (const k of ['since', 'until', 'limit'] as const) if (str(ctx.flags[k])) q.set(k, str(ctx.flags[k])!);
  if (str(ctx.flags.workflow)) q.set('workflow_id', str(ctx.flags.workflow)!);
  const members = ctx.fleet ?? [{ pod: undefined, client: ctx.client }];
  const pages = await Promise.all(
    members.map(async (m) => {
      const page = await m.client.get<{ executions: Summary[] }>(`/executions?${q}`);
      return page.executions.map((e) => (m.pod === undefined ? e : { pod: m.pod, ...e }));
    }),
  );
  // Newest first across the fleet; each agent answered at most --limit.
  const executions: Array<Summary & { pod?: string }> = pages
    .flat()
    .sort((a, b) => b.created_at.localeCompare(a.created_at))
    .slice(0, Number(str(ctx.flags.limit) ?? 50));
  const { out, format } = ctx;
  if (format === 'name') out.write(executions.map((e) => `${e.execution_id}\n`).join(''));
  else if (!printData(out, format, executions)) {
    const wide = format === 'wide';
    const rows = executions.map((e) => [
      ...(ctx.fleet ? [e.pod ?? ''] : []),
      e.execution_id,
      e.workflow_id,
      status(out, e.status),
      `${e.steps_completed}/${e.steps_total}`,
      ago(out, e.created_at),
      took(out, e.started_at, e.finished_at),
      ...(wide
        ? [
            e.submitted_by ?? '-',
            e.dry_run ? 'yes' : 'no',
            e.rollback.trigger ? `${e.rollback.status} (${e.rollback.trigger})` : e.rollback.status,
            e.error ? `${e.error.step ?? ''}: ${e.error.message}` : '',
          ]
        : []),
    ]);
    const header = [...(ctx.fleet ? ['POD'] : []), 'ID', 'WORKFLOW', 'STATUS', 'STEPS', 'CREATED', 'DURATION'];
    if (wide) header.push('BY', 'DRY RUN', 'ROLLBACK', 'ERROR');
    if (rows.length === 0) out.write('no executions\n');
    else out.write(table(header, rows));
  }
  return EXIT.ok;
}

export async function get(ctx: Ctx): Promise<number> {
  const { r, pod } = ctx.fleet ? await findInFleet(ctx.fleet, ctx.args[0]) : { r: await getOne(ctx), pod: undefined };
  const { out, format } = ctx;
  if (format === 'name') {
    out.write(`${r.execution_id}\n`);
    return EXIT.ok;
  }
  if (printData(out, format, pod === undefined ? r : { pod, ...r })) return EXIT.ok;
  const head = [
    ...(pod === undefined ? [] : [`pod         ${pod}`]),
    `execution   ${r.execution_id}`,
    `workflow    ${r.workflow_id}${r.dry_run ? ' (dry run)' : ''}`,
    `status      ${status(out, r.status)}`,
    `created     ${ago(out, r.created_at)}${r.submitted_by ? ` by ${r.submitted_by}` : ''}`,
    `duration    ${took(out, r.started_at, r.finished_at)}`,
  ];
  if (r.retry_of) head.push(`retry of    ${r.retry_of}`);
  if (r.retried_by) head.push(`retried by  ${r.retried_by}`);
  if (r.error) head.push(`error       ${r.error.type}${r.error.step ? ` at ${r.error.step}` : ''}: ${r.error.message}`);
  out.write(`${head.join('\n')}\n\n`);
  const stepRows = (steps: Record_['steps']) =>
    steps.map((s) => [
      s.name,
      status(out, s.status),
      `${s.adapter}.${s.action}`,
      String(s.attempts),
      took(out, s.started_at, s.finished_at),
      s.error ? `${s.error.type}: ${s.error.message}` : (s.reason ?? ''),
    ]);
  out.write(table(['STEP', 'STATUS', 'ACTION', 'ATTEMPTS', 'DURATION', 'NOTE'], stepRows(r.steps)));
  if (r.rollback.status !== 'not_started') {
    const by = r.rollback.requested_by ? ` by ${r.rollback.requested_by}` : '';
    out.write(`\nrollback    ${status(out, r.rollback.status)} (${r.rollback.trigger ?? '-'}${by})\n`);
    if (r.rollback.steps.length) {
      out.write(table(['STEP', 'STATUS', 'ACTION', 'ATTEMPTS', 'DURATION', 'NOTE'], stepRows(r.rollback.steps)));
    }
  }
  return EXIT.ok;
}

export async function logs(ctx: Ctx): Promise<number> {
  const id = await resolveId(ctx, ctx.args[0]);
  const step = str(ctx.flags.step);
  const sinceFlag = str(ctx.flags.since);
  const since = sinceFlag === undefined ? undefined : parseSince(sinceFlag, ctx.out.now());
  const tail = str(ctx.flags.tail) === undefined ? undefined : Number(ctx.flags.tail);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) {
    throw new CliError(`--tail ${ctx.flags.tail}: give a number of lines`, EXIT.usage);
  }
  const stored = await allPages<LogLine>(
    ctx.client,
    `/logs/${encodeURIComponent(id)}`,
    new URLSearchParams(step ? { step } : {}),
    (page) => (page as Static<typeof S.LogPage>).logs,
  );
  const lines = since === undefined ? stored.items : stored.items.filter((l) => Date.parse(l.ts) >= since);
  const next = stored.next;
  const shown = tail === undefined ? lines : lines.slice(Math.max(0, lines.length - tail));
  const json = ctx.format === 'json';
  for (const l of shown) ctx.out.write(json ? `${JSON.stringify(l)}\n` : logLine(ctx, l));
  if (!ctx.flags.follow) return EXIT.ok;
  const q = new URLSearchParams({ follow: 'true', since: String(next), ...(step && { step }) });
  let final: string | null = null;
  await ctx.client.stream(`/logs/${encodeURIComponent(id)}?${q}`, (e) => {
    if (e.type === 'log') {
      const l = e.data as LogLine;
      ctx.out.write(json ? `${JSON.stringify(l)}\n` : logLine(ctx, l));
    }
    if (e.type === 'end') {
      final = (e.data as { status: string | null }).status;
      return true;
    }
  });
  return final === null ? EXIT.ok : outcome(final);
}

async function getOne(ctx: Ctx): Promise<Record_> {
  const id = await resolveId(ctx, ctx.args[0]);
  return ctx.client.get<Record_>(`/execute/${encodeURIComponent(id)}`);
}

/** The execution `arg` names on whichever agent of the fleet has it (@latest: the newest of them all). */
async function findInFleet(fleet: FleetMember[], arg: string | undefined): Promise<{ r: Record_; pod: string }> {
  if (arg === undefined) throw new CliError('name the execution: an id, or @latest', EXIT.usage);
  const found: Array<{ r: Record_; pod: string }> = [];
  for (const m of fleet) {
    let id = arg;
    if (arg === '@latest') {
      const page = await m.client.get<{ executions: Summary[] }>('/executions?limit=1');
      if (page.executions.length === 0) continue;
      id = page.executions[0].execution_id;
    }
    try {
      found.push({ r: await m.client.get<Record_>(`/execute/${encodeURIComponent(id)}`), pod: m.pod });
    } catch (err) {
      if (!(err instanceof CliError && err.code === EXIT.notFound)) throw err;
    }
  }
  found.sort((a, b) => b.r.created_at.localeCompare(a.r.created_at));
  if (found.length === 0) {
    const pods = fleet.map((m) => m.pod).join(', ');
    throw new CliError(
      arg === '@latest' ? `there is no execution yet on ${pods}` : `execution ${arg} not found on ${pods}`,
      EXIT.notFound,
    );
  }
  return found[0];
}

/** `10m` back from now, or an RFC 3339 time, as the agent's own filters read them: epoch ms. */
function parseSince(value: string, now: number): number {
  const problems: Problem[] = [];
  const iso = parseTime(value, '--since', problems, now);
  if (iso === undefined) throw new CliError(`--since ${value}: ${problems[0].message}`, EXIT.usage);
  return Date.parse(iso);
}

/** With --wait: 0 once it ended cancelled, 1 when it ended otherwise (it finished before the cancel took). */
export async function cancel(ctx: Ctx): Promise<number> {
  const id = await resolveId(ctx, ctx.args[0]);
  const { body } = await ctx.client.post<Static<typeof S.CancelAnswer>>(`/execute/${encodeURIComponent(id)}/cancel`);
  const end = await accepted(ctx, id, body, `execution ${id}: ${body.message}`);
  return end === undefined || end === 'cancelled' ? EXIT.ok : EXIT.failed;
}

/** With --wait or --follow: 0 once it ended rolled_back, 1 otherwise. */
export async function rollback(ctx: Ctx): Promise<number> {
  const id = await resolveId(ctx, ctx.args[0]);
  const { body } = await ctx.client.post<Static<typeof S.RollbackAnswer>>(`/rollback/${encodeURIComponent(id)}`);
  const end = await accepted(ctx, id, body, `execution ${id}: rollback started (${body.status})`);
  return end === undefined || end === 'rolled_back' ? EXIT.ok : EXIT.failed;
}

export async function retry(ctx: Ctx): Promise<number> {
  const id = await resolveId(ctx, ctx.args[0]);
  const body: Record<string, unknown> = {};
  const from = str(ctx.flags['from-step']);
  if (from !== undefined) body.from_step = from;
  if (ctx.flags.param !== undefined || ctx.flags['param-file'] !== undefined) body.parameters = parseParams(ctx);
  const { body: answer } = await ctx.client.post<Static<typeof S.RetryAccepted>>(
    `/execute/${encodeURIComponent(id)}/retry`,
    body,
  );
  const kept = answer.steps_kept ? `, ${answer.steps_kept} step(s) kept` : '';
  return afterAccepted(ctx, answer, `retries ${id} from ${answer.from_step}${kept}`);
}

export async function wait(ctx: Ctx): Promise<number> {
  const id = await resolveId(ctx, ctx.args[0]);
  const t = str(ctx.flags.timeout);
  const timeoutMs = t === undefined ? undefined : parseDuration(t);
  const end = await untilEnd(ctx, id, false, timeoutMs);
  if (!printData(ctx.out, ctx.format, { execution_id: id, status: end })) {
    ctx.out.write(ctx.format === 'name' ? `${id}\n` : `execution ${id} ${status(ctx.out, end ?? 'unknown')}\n`);
  }
  return outcome(end);
}

function parseDuration(value: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value);
  if (!m) throw new CliError(`--timeout ${value}: give a duration such as 90s, 10m, 2h or 1d`, EXIT.usage);
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[(m[2] ?? 's') as 's'];
}

export async function events(ctx: Ctx): Promise<number> {
  const q = new URLSearchParams();
  const since = str(ctx.flags.since);
  if (since !== undefined) q.set('since', since);
  const execution = str(ctx.flags.execution);
  if (execution !== undefined) {
    if (ctx.fleet && execution === '@latest') throw new CliError('with --selector, give --execution an id', EXIT.usage);
    q.set('execution_id', await resolveId(ctx, execution));
  }
  if (str(ctx.flags.workflow)) q.set('workflow_id', str(ctx.flags.workflow)!);
  const types = list(ctx.flags.type);
  if (types.length) q.set('types', types.join(','));
  const members = ctx.fleet ?? [{ pod: undefined, client: ctx.client }];
  const print = (e: JournalEvent & { pod?: string }) => {
    if (ctx.format === 'json') ctx.out.write(`${JSON.stringify(e)}\n`);
    else {
      const pod = e.pod === undefined ? '' : `${e.pod}  `;
      const line = `${pod}${e.seq}  ${e.ts}  ${e.type}  ${e.execution_id}${e.step ? `  ${e.step}` : ''}  ${summary(e)}`;
      ctx.out.write(`${line.trimEnd()}\n`);
    }
  };
  const withPod = (pod: string | undefined, e: JournalEvent) => (pod === undefined ? e : { pod, ...e });
  if (ctx.flags.follow) {
    await Promise.all(
      members.map(async (m) => {
        // Without --since, from now on: past the events stored so far.
        const from = since ?? String((await storedEvents(m.client, q)).next);
        const fq = new URLSearchParams(q);
        fq.set('since', from);
        fq.set('follow', 'true');
        await m.client.stream(`/events?${fq}`, (e) => {
          if (e.type !== 'error') print(withPod(m.pod, e.data as JournalEvent));
          else throw new CliError((e.data as { message: string }).message, EXIT.unreachable);
        });
      }),
    );
    return EXIT.ok;
  }
  const pages = await Promise.all(
    members.map(async (m) => (await storedEvents(m.client, q)).events.map((e) => withPod(m.pod, e))),
  );
  // One agent's events in seq order; a fleet's by time.
  const events = ctx.fleet ? pages.flat().sort((a, b) => a.ts.localeCompare(b.ts)) : pages.flat();
  for (const e of events) print(e);
  return EXIT.ok;
}

/** Every stored event the query matches, and the seq to go on from. */
async function storedEvents(client: Client, q: URLSearchParams): Promise<{ events: JournalEvent[]; next: number }> {
  const { items, next } = await allPages<JournalEvent>(
    client,
    '/events',
    q,
    (page) => (page as Static<typeof S.EventPage>).events,
  );
  return { events: items, next };
}

/** The largest page the log and event routes give. */
const PAGE_LIMIT = 10_000;

/**
 * Every item of a route paged by `since` and `next_since` (logs, events), from `q`'s `since` (default 0) to
 * the end, page after page; and the seq to go on from.
 */
async function allPages<T>(
  client: Client,
  path: string,
  q: URLSearchParams,
  itemsOf: (page: unknown) => T[],
): Promise<{ items: T[]; next: number }> {
  const items: T[] = [];
  const pq = new URLSearchParams(q);
  pq.set('limit', String(PAGE_LIMIT));
  for (;;) {
    const page = await client.get<{ next_since: number }>(`${path}?${pq}`);
    const got = itemsOf(page);
    items.push(...got);
    if (got.length < PAGE_LIMIT) return { items, next: page.next_since };
    pq.set('since', String(page.next_since));
  }
}

/** The few fields of an event's data a person reads first. */
function summary(e: JournalEvent): string {
  const d = e.data as Record<string, unknown>;
  if (e.type === 'execution.status_changed') return `${d.from} → ${d.to}`;
  if (e.type === 'step.finished' || e.type === 'rollback.step_finished') return String(d.status);
  if (e.type === 'rollback.started') return `trigger ${d.trigger}`;
  if (e.type === 'execution.retried') return `retry ${d.retry_id} from ${d.from_step}`;
  return '';
}

export async function audit(ctx: Ctx): Promise<number> {
  const q = new URLSearchParams();
  for (const [flag, param] of [
    ['since', 'since'],
    ['limit', 'limit'],
    ['actor', 'actor'],
    ['execution', 'execution_id'],
  ] as const) {
    if (str(ctx.flags[flag]) !== undefined) q.set(param, str(ctx.flags[flag])!);
  }
  const page = await ctx.client.get<Static<typeof S.AuditPage>>(`/audit?${q}`);
  if (!printData(ctx.out, ctx.format, page.entries)) {
    const rows = page.entries.map((a) => [
      String(a.seq),
      ago(ctx.out, a.ts),
      a.actor ?? '-',
      `${a.method} ${a.path}`,
      String(a.status),
      a.execution_id ?? '',
    ]);
    ctx.out.write(rows.length ? table(['SEQ', 'WHEN', 'WHO', 'REQUEST', 'STATUS', 'EXECUTION'], rows) : 'no entries\n');
  }
  return EXIT.ok;
}
