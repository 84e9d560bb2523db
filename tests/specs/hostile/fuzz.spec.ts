/**
 * Property-based fuzzing of POST /validate and POST /execute against the running agent, with fast-check and
 * a fixed seed (FUZZ_SEED; HOSTILE_FUZZ_SEED and HOSTILE_FUZZ_RUNS_FACTOR explore further): arbitrary JSON bodies, requests with
 * fields of any type, mutations of a valid package, random YAML text, random parameter maps. Property: never
 * a 5xx, always JSON in the success shape or `{ error_type, message, details }` from the taxonomy, no leak,
 * and /validate and /execute agree. Executes are dry runs. Requests go one at a time.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { useAgent } from '../support/agent-process.js';
import { uniqueName } from '../http/http-support.js';
import {
  assertErrorShape,
  assertInvariants,
  assertNoLeak,
  executionCount,
  raw,
  type RawReply,
  richPackage,
  useWitness,
} from './hostile-support.js';

const FUZZ_SEED = 20261123;
const seed = Number(process.env.HOSTILE_FUZZ_SEED ?? FUZZ_SEED);
/** Multiplies every property's number of runs (HOSTILE_FUZZ_RUNS_FACTOR=10 for a longer exploration). */
const runsFactor = Number(process.env.HOSTILE_FUZZ_RUNS_FACTOR ?? 1);

/** Checks one answer of the fuzz run; returns whether it accepted (200 report / 202 execution). */
function checkAnswer(r: RawReply, path: '/validate' | '/execute', sent: string): boolean {
  const what = `${path} ${sent.slice(0, 300)}`;
  assert.ok(r.status < 500, `${what} answered ${r.status}: ${r.text.slice(0, 1000)}`);
  assertNoLeak(r, what, sent);
  assert.ok(r.body !== undefined, `${what}: ${r.status} is not JSON: ${r.text.slice(0, 300)}`);
  if (r.status >= 400) {
    assertErrorShape(r, what);
    assert.ok([400, 404, 409, 413].includes(r.status), `${what}: unexpected ${r.status}`);
    if (r.body.error_type === 'validation_error') {
      assert.ok(Array.isArray(r.body.details.errors) && r.body.details.errors.length > 0, `${what}: no details.errors`);
      for (const e of r.body.details.errors)
        assert.match(e.path, /^(\$|header\.|query\.)/, `${what}: ${JSON.stringify(e)}`);
    }
    return false;
  }
  if (path === '/validate') {
    assert.equal(r.status, 200, what);
    assert.deepEqual(Object.keys(r.body).sort(), ['errors', 'valid', 'warnings', 'workflow_id'], what);
    assert.equal(typeof r.body.valid, 'boolean');
    assert.equal(r.body.valid, r.body.errors.length === 0, `${what}: valid disagrees with errors`);
    for (const e of [...r.body.errors, ...r.body.warnings]) {
      assert.match(e.path, /^\$/, `${what}: ${JSON.stringify(e)}`);
      assert.ok(typeof e.message === 'string' && e.message.length > 0, `${what}: ${JSON.stringify(e)}`);
    }
    return r.body.valid;
  }
  assert.equal(r.status, 202, what);
  assert.deepEqual(Object.keys(r.body).sort(), ['dry_run', 'execution_id', 'status', 'workflow_id'], what);
  assert.equal(r.body.dry_run, true, `${what}: a fuzzed execute ran for real`);
  return true;
}

// --- generators ---------------------------------------------------------------

/** Pieces that mean something to the agent: templates, paths, YAML, shell, encodings. */
const FRAGMENTS = [
  '${{',
  '}}',
  ' params.',
  'params.who',
  'params.times',
  'steps.',
  'steps.greet.outputs.stdout',
  '.outputs.',
  'workflow.name',
  'execution.id',
  'error.message',
  '{{',
  '##VAR:unquoted:',
  '##',
  '[0]',
  '[',
  ']',
  '{',
  '}',
  ':',
  ': ',
  '- ',
  '&a',
  '*a',
  '!!binary',
  '|',
  '>',
  '#',
  '---',
  '...',
  '"',
  "'",
  '\\',
  '\n',
  '\r\n',
  '\t',
  '\u0000',
  '\ud800',
  '\udfff',
  '😀',
  '\u202e',
  'e\u0301',
  ' ',
  'a',
  '0',
  '-1',
  '1e309',
  'null',
  'true',
  'shell',
  'run',
  'api',
  'k8s',
  'flowrunner',
  'wpk/v1',
  'Workflow',
  '__proto__',
  'constructor',
  '/src/',
  '../',
  '%00',
  '$(id)',
  '; rm -rf /',
];

const fragmentString = fc
  .array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6, unit: 'binary' })), { maxLength: 10 })
  .map((a) => a.join(''));
const anyString = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20, unit: 'binary' }), fragmentString);
const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' });
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  anyJson,
  anyString,
  fc.constantFrom(null, true, false, 0, -0, 1.5, 2 ** 53, -1, [], {}),
);
const anyKey = fc.oneof(
  fc.constantFrom(
    'name',
    'adapter',
    'action',
    'with',
    'command',
    'when',
    'retries',
    'rollback',
    'parameters',
    'type',
    'default',
    'handlers',
    '__proto__',
    'constructor',
    '',
  ),
  fc.string({ maxLength: 8 }),
);

type Segment = string | number;

function allPaths(value: unknown, at: Segment[] = []): Segment[][] {
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[Segment, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...at, k], ...allPaths(v, [...at, k])]);
}

function containerAt(root: unknown, path: Segment[]): any {
  return path.reduce<any>((v, s) => v?.[s], root);
}

type Mutation =
  | { kind: 'drop'; pick: number }
  | { kind: 'replace'; pick: number; value: unknown }
  | { kind: 'add'; pick: number; key: string; value: unknown }
  | { kind: 'string'; pick: number; value: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), value: anyValue }),
  fc.record({ kind: fc.constant('add' as const), pick: fc.nat(), key: anyKey, value: anyValue }),
  fc.record({ kind: fc.constant('string' as const), pick: fc.nat(), value: fragmentString }),
);

/** Applies mutations to a copy of a valid package, each at a path picked among those it has then. */
function mutate(base: unknown, mutations: Mutation[]): unknown {
  const doc = structuredClone(base) as Record<string, unknown>;
  for (const m of mutations) {
    const paths = allPaths(doc);
    if (m.kind === 'add') {
      const containers = [[], ...paths].filter((p) => {
        const c = containerAt(doc, p);
        return c !== null && typeof c === 'object' && !Array.isArray(c);
      });
      const target = containerAt(doc, containers[m.pick % containers.length]);
      Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
      continue;
    }
    if (paths.length === 0) continue;
    const path = paths[m.pick % paths.length];
    const parent = containerAt(doc, path.slice(0, -1));
    const last = path[path.length - 1];
    if (m.kind === 'drop') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else parent[last] = m.value;
  }
  return doc;
}

/** Character-level edits of a text: insert a fragment, delete a range, duplicate a line. */
const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...FRAGMENTS) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('dupline' as const), at: fc.nat() }),
);

type TextEdit =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'dupline'; at: number };

function editText(text: string, edits: TextEdit[]): string {
  let t = text;
  for (const e of edits) {
    const at = t.length ? e.at % t.length : 0;
    if (e.kind === 'insert') t = t.slice(0, at) + e.text + t.slice(at);
    else if (e.kind === 'delete') t = t.slice(0, at) + t.slice(at + e.length);
    else {
      const lines = t.split('\n');
      const i = e.at % lines.length;
      lines.splice(i, 0, lines[i]);
      t = lines.join('\n');
    }
  }
  return t;
}

describe(`hostile input: property-based fuzz of /validate and /execute (fast-check, seed ${seed})`, function () {
  this.timeout(120_000 * Math.max(1, runsFactor));
  const agent = useAgent();
  const witness = useWitness(agent);
  let countAtStart = 0;
  let accepted = 0;

  before(async () => {
    countAtStart = await executionCount(agent);
  });

  /** Sends the body to /execute (as it is) and the package part to /validate; both answers must agree. */
  async function both(executeBody: Record<string, unknown>, validateBody: Record<string, unknown>): Promise<void> {
    const eText = JSON.stringify(executeBody);
    const vText = JSON.stringify(validateBody);
    const e = await raw(agent, 'POST', '/execute', eText, { 'content-type': 'application/json' });
    const v = await raw(agent, 'POST', '/validate', vText, { 'content-type': 'application/json' });
    const executed = checkAnswer(e, '/execute', eText);
    const valid = checkAnswer(v, '/validate', vText);
    if (executed) accepted++;
    assert.equal(
      executed,
      valid,
      `/validate (${v.status} ${v.text.slice(0, 400)}) and /execute (${e.status} ${e.text.slice(0, 400)}) disagree about ${vText.slice(0, 400)}`,
    );
  }

  /** The property holds for `numRuns` runs (times the runs factor) from the seed, and so do the invariants. */
  async function holds<Ts extends [unknown, ...unknown[]]>(property: fc.IAsyncProperty<Ts>, numRuns: number) {
    await fc.assert(property, { seed, numRuns: Math.max(1, Math.round(numRuns * runsFactor)), endOnFailure: true });
    await assertInvariants(agent, witness);
  }

  it('answers arbitrary JSON and text bodies, under any content type, without a 5xx', async () => {
    const body = fc.oneof(
      anyJson.map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200, unit: 'binary' }),
      fc.tuple(anyJson, fc.nat()).map(([v, cut]) => {
        const t = JSON.stringify(v);
        return t.slice(0, cut % (t.length + 1));
      }),
    );
    const contentType = fc.constantFrom(
      undefined,
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
    );
    await holds(
      fc.asyncProperty(
        body,
        contentType,
        fc.constantFrom('/validate' as const, '/execute' as const),
        async (text, type, path) => {
          const r = await raw(agent, 'POST', path, text, type ? { 'content-type': type } : {});
          if (checkAnswer(r, path, text) && path === '/execute') accepted++;
        },
      ),
      150,
    );
  });

  it('answers requests whose every field may have any type without a 5xx, and /validate agrees with /execute', async () => {
    const request = fc.record(
      {
        wpk_content: fc.oneof(anyValue, fc.constant(richPackage(uniqueName('fz')))),
        parameters: anyValue,
        workflow_id: anyValue,
        extra: anyValue,
      },
      { requiredKeys: [] },
    );
    await holds(
      fc.asyncProperty(request, fc.constantFrom(undefined, false, 'yes', null), async (req, rollback) => {
        const { extra, ...fields } = req as Record<string, unknown>;
        const validateBody = { ...fields, ...(extra === undefined ? {} : { extra }) };
        const executeBody = {
          ...validateBody,
          dry_run: true,
          ...(rollback === undefined ? {} : { rollback_on_failure: rollback }),
        };
        // rollback_on_failure is not a /validate field: only compare when it is valid or absent.
        if (rollback === undefined || rollback === false) await both(executeBody, validateBody);
        else
          checkAnswer(
            await raw(agent, 'POST', '/execute', JSON.stringify(executeBody), { 'content-type': 'application/json' }),
            '/execute',
            JSON.stringify(executeBody),
          );
      }),
      120,
    );
  });

  it('answers mutations of a valid package (dropped, replaced and added fields, random template text) without a 5xx', async () => {
    const base = richPackage('fuzz-base');
    await holds(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), async (mutations, asYaml) => {
        const doc = mutate(base, mutations);
        const content = asYaml ? toYaml(doc) : doc;
        await both({ wpk_content: content, dry_run: true }, { wpk_content: content });
      }),
      200,
    );
  });

  it('answers random and edited YAML text as wpk_content without a 5xx', async () => {
    const baseYaml = toYaml(richPackage('fuzz-yaml'));
    const yamlText = fc.oneof(
      fc
        .array(
          fc.oneof(
            fc.constantFrom(...FRAGMENTS),
            fc.constantFrom(
              'apiVersion: wpk/v1\n',
              'kind: Workflow\n',
              'spec:\n  handlers:\n',
              '  - name: a\n',
              '    with: {command: [true]}\n',
              '\n  ',
            ),
          ),
          { maxLength: 30 },
        )
        .map((a) => a.join('')),
      fc.array(textEdit, { minLength: 1, maxLength: 5 }).map((edits) => editText(baseYaml, edits)),
      fc.string({ maxLength: 300, unit: 'binary' }),
    );
    await holds(
      fc.asyncProperty(yamlText, async (text) => {
        await both({ wpk_content: text, dry_run: true }, { wpk_content: text });
      }),
      150,
    );
  });

  it('answers random parameter maps, for an inline package and a bundled workflow_id, without a 5xx', async () => {
    const inline = richPackage(uniqueName('fuzz-params'));
    const params = fc.oneof(
      fc.dictionary(anyKey, anyValue, { maxKeys: 5 }),
      fc.record({ who: anyValue, times: anyValue }, { requiredKeys: [] }),
      fc.record({ workdir: anyValue, failAt: anyValue }, { requiredKeys: [] }),
    );
    await holds(
      fc.asyncProperty(params, fc.boolean(), async (parameters, bundled) => {
        const target = bundled ? { workflow_id: 'rollback-demo-1.0.0' } : { wpk_content: inline };
        await both({ ...target, parameters, dry_run: true }, { ...target, parameters });
      }),
      150,
    );
  });

  it('stored exactly the executions it accepted, and the agent process is alive and serving', async () => {
    assert.equal(await executionCount(agent), countAtStart + accepted, `accepted ${accepted}`);
    assert.equal(agent.proc.exitCode, null);
    await assertInvariants(agent, witness);
  });
});
