/**
 * Hostile request bodies against the running agent: malformed, truncated, empty, mislabelled, oversized and
 * deeply nested JSON, unknown and misspelled fields, and every field of a valid request replaced by every
 * other JSON type. After each: the right 4xx, nothing created, the witness execution intact, still serving.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { useAgent } from '../support/agent-process.js';
import { uniqueName } from '../http/http-support.js';
import {
  assertInvalidAt,
  assertInvariants,
  assertRefused,
  assertWellFormed,
  executionCount,
  JSON_HEADERS,
  postJson,
  raw,
  type RawReply,
  richPackage,
  unexpectedErrors,
  useWitness,
} from './hostile-support.js';

const BODY_LIMIT_BYTES = 65_536;

/** A valid /execute request (a dry run, so an accepted one runs nothing). */
function richRequest() {
  return {
    wpk_content: richPackage(uniqueName('rich')),
    parameters: { who: 'alice', times: 2 },
    dry_run: true,
    rollback_on_failure: false,
  };
}

type Segment = string | number;

function jsonPath(segments: Segment[]): string {
  return segments.reduce<string>((p, s) => (typeof s === 'number' ? `${p}[${s}]` : `${p}.${s}`), '$');
}

/** Every path in a JSON value (not the root), containers before their contents. */
function allPaths(value: unknown, at: Segment[] = []): Segment[][] {
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[Segment, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...at, k], ...allPaths(v, [...at, k])]);
}

function setAt(root: unknown, path: Segment[], value: unknown): unknown {
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let cur = copy as Record<string | number, unknown>;
  for (const s of path.slice(0, -1)) cur = cur[s] as Record<string | number, unknown>;
  cur[path[path.length - 1]] = value;
  return copy;
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

const SUBSTITUTES: unknown[] = [null, 42, 'str', [], {}, true];

/** Sends only the headers of a POST declaring `length` bytes and waits for the answer without sending a body. */
function headersOnly(agent: { port: number }, path: string, length: number): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: agent.port,
        method: 'POST',
        path,
        headers: { ...JSON_HEADERS, 'content-length': String(length) },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, text, body: JSON.parse(text) });
        });
      },
    );
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.flushHeaders();
  });
}

describe('hostile input: request bodies', function () {
  this.timeout(60_000);
  const agent = useAgent({ env: { BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES) } });
  const witness = useWitness(agent);
  beforeEach(() => {
    // A test that failed before its own check does not pass its agent errors on to the next one.
    witness.errorsSeen = unexpectedErrors(agent).length;
  });

  /** Sends each body to both endpoints and checks each is refused the same way, with nothing created. */
  async function refuseAll(
    bodies: Array<string | Buffer>,
    status: number | number[],
    type: string | string[],
    headers: Record<string, string> = JSON_HEADERS,
  ): Promise<RawReply[]> {
    const before = await executionCount(agent);
    const replies: RawReply[] = [];
    for (const body of bodies) {
      for (const path of ['/execute', '/validate']) {
        const r = await raw(agent, 'POST', path, body, headers);
        assertRefused(r, `POST ${path} ${JSON.stringify(String(body).slice(0, 80))}`, status, type);
        replies.push(r);
      }
    }
    await assertInvariants(agent, witness, before);
    return replies;
  }

  it('refuses malformed JSON with 400 validation_error at $ and creates nothing', async () => {
    const valid = JSON.stringify(richRequest());
    const replies = await refuseAll(
      [
        '{',
        '}',
        '{"workflow_id":}',
        "{'workflow_id': 'rollback-demo-1.0.0'}",
        '{"workflow_id": "rollback-demo-1.0.0",}',
        '{"workflow_id" "rollback-demo-1.0.0"}',
        '[1,]',
        'NaN',
        'undefined',
        '{"dry_run": tru}',
        '{"a":1}{"b":2}',
        `${valid}${valid}`,
        `\uFEFF${valid}`, // a byte order mark is not JSON
        '{"workflow_id": "a\u0001b"}', // a raw control character inside a string
        '{"workflow_id": "\\x41"}', // not a JSON escape
        '{"workflow_id": "\\u12"}',
        '/* comment */ {}',
        Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), // not UTF-8
      ],
      400,
      'validation_error',
    );
    for (const r of replies)
      assert.deepEqual(
        r.body.details.errors.map((e: { path: string }) => e.path),
        ['$'],
        r.text,
      );
  });

  it('refuses a valid body cut at every offset with 400 validation_error and creates nothing', async () => {
    const valid = JSON.stringify(richRequest());
    const before = await executionCount(agent);
    for (let cut = 1; cut < valid.length; cut++) {
      for (const path of ['/execute', '/validate']) {
        const r = await raw(agent, 'POST', path, valid.slice(0, cut), JSON_HEADERS);
        assertRefused(r, `POST ${path} cut at ${cut}: ${valid.slice(0, cut)}`, 400, 'validation_error');
      }
    }
    await assertInvariants(agent, witness, before);
  });

  it('refuses an empty or blank body, and no body at all, with 400 validation_error at $', async () => {
    const replies = await refuseAll(['', '   ', '\n\t\r\n'], 400, 'validation_error');
    for (const r of replies) assert.deepEqual(r.body.details.errors, [{ path: '$', message: 'is required' }]);
    const before = await executionCount(agent);
    for (const path of ['/execute', '/validate'])
      assertRefused(await raw(agent, 'POST', path), `POST ${path} without a body`, 400, 'validation_error');
    await assertInvariants(agent, witness, before);
  });

  it('refuses a JSON body declared as text/plain, form-encoded or multipart (what a cross-site form can send) with 400 naming Content-Type', async () => {
    const body = JSON.stringify(richRequest());
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
      'application/xml',
      'application/jsonx',
    ]) {
      const replies = await refuseAll([body], 400, 'validation_error', { 'content-type': type });
      for (const r of replies) {
        assert.deepEqual(
          r.body.details.errors.map((e: { path: string }) => e.path),
          ['header.Content-Type'],
          r.text,
        );
        assert.match(r.body.message, /application\/json/);
      }
    }
  });

  it('parses a body with no Content-Type, or a JSON one with parameters or in any case, as JSON', async () => {
    const before = await executionCount(agent);
    const types: Array<string | undefined> = [
      undefined,
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/vnd.wpk+json',
    ];
    for (const type of types) {
      const r = await raw(
        agent,
        'POST',
        '/execute',
        JSON.stringify(richRequest()),
        type === undefined ? {} : { 'content-type': type },
      );
      assertWellFormed(r, `POST /execute as ${type}`);
      assert.equal(r.status, 202, `${type}: ${r.text}`);
    }
    assert.equal(await executionCount(agent), before + types.length);
    await assertInvariants(agent, witness);
  });

  it('answers a declared Content-Length over BODY_LIMIT_BYTES with 413 at once, before any of the body is sent', async () => {
    const before = await executionCount(agent);
    for (const path of ['/execute', '/validate', '/init']) {
      const r = await headersOnly(agent, path, BODY_LIMIT_BYTES + 1);
      assertRefused(r, `${path} declaring ${BODY_LIMIT_BYTES + 1} bytes`, 413, 'payload_too_large');
      assert.equal(r.body.details.limit_bytes, BODY_LIMIT_BYTES);
      assert.match(r.body.message, /BODY_LIMIT_BYTES/);
    }
    await assertInvariants(agent, witness, before);
  });

  it('answers a chunked body that grows past BODY_LIMIT_BYTES with 413, counting UTF-8 bytes, not characters', async () => {
    const before = await executionCount(agent);
    const padded = (text: string) =>
      JSON.stringify({
        ...richRequest(),
        wpk_content: {
          ...richPackage(uniqueName('big')),
          metadata: { name: 'big', version: '1.0.0', description: text },
        },
      });
    const multiByte = padded('€'.repeat(BODY_LIMIT_BYTES / 2)); // under the limit in characters, over it in bytes
    assert.ok(multiByte.length < BODY_LIMIT_BYTES && Buffer.byteLength(multiByte) > BODY_LIMIT_BYTES);
    for (const [path, body] of [
      ['/execute', multiByte],
      ['/validate', padded('y'.repeat(BODY_LIMIT_BYTES * 2))],
    ]) {
      const r = await raw(agent, 'POST', path, body, JSON_HEADERS, true);
      assertRefused(r, `chunked ${Buffer.byteLength(body)} bytes to ${path}`, 413, 'payload_too_large');
      assert.equal(r.body.details.limit_bytes, BODY_LIMIT_BYTES);
    }
    await assertInvariants(agent, witness, before);
  });

  it('answers an 8 MiB chunked upload with 413 or closes the connection on it, and keeps serving', async () => {
    const before = await executionCount(agent);
    // The agent answers once the limit is passed and closes the connection (Connection: close); a client
    // still sending may see the reset before the answer, which is an acceptable way to be refused.
    const r = await raw(agent, 'POST', '/execute', Buffer.alloc(8 * 1024 * 1024, 0x20), JSON_HEADERS, true).catch(
      (err: NodeJS.ErrnoException) => {
        assert.ok(
          ['EPIPE', 'ECONNRESET'].includes(err.code ?? ''),
          `unexpected client error ${err.code}: ${err.message}`,
        );
        return undefined;
      },
    );
    if (r) assertRefused(r, '8 MiB chunked', 413, 'payload_too_large');
    await assertInvariants(agent, witness, before);
  });

  describe('deep nesting (the agent must refuse it, never overflow its stack)', () => {
    const arrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const objects = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    const observed = new Set<string>();
    after(() => {
      // Which answer the depth limit gave (400 from MAX_JSON_DEPTH, or 413 when the body is too large as well).
      if (process.env.HOSTILE_VERBOSE) console.log(`      deep nesting answered: ${[...observed].join(', ')}`);
    });

    const deepBodies: Array<[string, () => string]> = [
      ['10 000 levels of [ as the whole body', () => arrays(10_000)],
      ['10 000 unclosed [', () => '['.repeat(10_000)],
      ['10 000 levels of objects as the whole body', () => objects(10_000)],
      ['10 000 levels of objects as wpk_content', () => `{"wpk_content":${objects(10_000)}}`],
      [
        '10 000 levels of arrays in a parameter value',
        () => `{"workflow_id":"rollback-demo-1.0.0","dry_run":true,"parameters":{"workdir":${arrays(10_000)}}}`,
      ],
      [
        '10 000 levels inside a step input',
        () => JSON.stringify(richRequest()).replace('"env":{', `"env":{"DEEP":${objects(10_000)},`),
      ],
      [
        '10 000 levels inside a when value',
        () => JSON.stringify(richRequest()).replace('"value":1', `"value":${arrays(10_000)}`),
      ],
      ['40 000 levels (over the body limit as well)', () => arrays(40_000)],
    ];
    for (const [what, make] of deepBodies) {
      it(`refuses ${what} with 400 validation_error or 413, and keeps serving`, async () => {
        const before = await executionCount(agent);
        const body = make();
        for (const path of ['/execute', '/validate']) {
          const r = await raw(agent, 'POST', path, body, JSON_HEADERS);
          assertRefused(r, `${what} to ${path}`, [400, 413], ['validation_error', 'payload_too_large']);
          observed.add(`${r.status} ${r.body.error_type}`);
          if (r.status === 400 && !/is not valid JSON/.test(r.body.message))
            assert.match(r.body.message, /MAX_JSON_DEPTH/, `${what}: ${r.body.message}`);
        }
        await assertInvariants(agent, witness, before);
      });
    }

    it('still accepts a package nested 40 levels deep inside a when value', async () => {
      const req = richRequest();
      let nested: unknown = 1;
      for (let i = 0; i < 40; i++) nested = { a: nested };
      (req.wpk_content.spec.handlers[1].when as { value: unknown }).value = nested;
      const r = await postJson(agent, '/validate', { wpk_content: req.wpk_content });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.valid, true, r.text);
    });

    it('reports a YAML package nested thousands of levels deep as invalid, without a 5xx', async () => {
      const before = await executionCount(agent);
      for (const yaml of [
        '['.repeat(5000) + ']'.repeat(5000),
        `${'{a: '.repeat(5000)}1${'}'.repeat(5000)}`,
        '['.repeat(20_000),
      ]) {
        const v = await postJson(agent, '/validate', { wpk_content: yaml });
        assertWellFormed(v, 'deep YAML to /validate');
        assert.equal(v.status, 200, v.text.slice(0, 500));
        assert.equal(v.body.valid, false);
        const e = await postJson(agent, '/execute', { wpk_content: yaml, dry_run: true });
        assertRefused(e, 'deep YAML to /execute', 400, 'validation_error');
      }
      await assertInvariants(agent, witness, before);
    });
  });

  describe('unknown and misspelled fields', () => {
    const requestLevel: Array<[string, (r: Record<string, unknown>) => void, string]> = [
      ['wpk_contnet', (r) => ((r.wpk_contnet = r.wpk_content), delete r.wpk_content), '$.wpk_contnet'],
      ['dryrun', (r) => ((r.dryrun = true), delete r.dry_run), '$.dryrun'],
      ['dry-run', (r) => (r['dry-run'] = true), '$.dry-run'],
      ['DRY_RUN', (r) => (r.DRY_RUN = true), '$.DRY_RUN'],
      ['params', (r) => ((r.params = r.parameters), delete r.parameters), '$.params'],
      ['handler', (r) => (r.handler = []), '$.handler'],
      ['workflowId', (r) => (r.workflowId = 'x'), '$.workflowId'],
      [
        '__proto__',
        (r) => Object.defineProperty(r, '__proto__', { value: { dry_run: false }, enumerable: true }),
        '$.__proto__',
      ],
    ];
    /** /execute refuses `req` with 400 validation_error naming `path`, and creates nothing. */
    async function refusedAt(req: unknown, what: string, path: string): Promise<void> {
      const before = await executionCount(agent);
      const paths = assertRefused(
        await postJson(agent, '/execute', req),
        `/execute with ${what}`,
        400,
        'validation_error',
      );
      assert.ok(paths.includes(path), `expected ${path} in ${paths.join(', ')}`);
      await assertInvariants(agent, witness, before);
    }

    for (const [field, mutate, path] of requestLevel) {
      it(`refuses the request field ${field} with 400 naming ${path}`, async () => {
        const req = richRequest() as Record<string, unknown>;
        mutate(req);
        await refusedAt(req, field, path);
      });
    }

    type Pkg = ReturnType<typeof richPackage> & Record<string, any>;
    const packageLevel: Array<[string, (p: Pkg) => void, string]> = [
      ['apiversion at the top', (p) => (p.apiversion = 'wpk/v1'), '$.apiversion'],
      ['metadata.nmae', (p) => ((p.metadata as any).nmae = 'x'), '$.metadata.nmae'],
      ['spec.handler', (p) => ((p.spec as any).handler = []), '$.spec.handler'],
      ['spec.paramters', (p) => ((p.spec as any).paramters = {}), '$.spec.paramters'],
      [
        'spec.parameters.who.tpye',
        (p) => ((p.spec.parameters.who as any).tpye = 'string'),
        '$.spec.parameters.who.tpye',
      ],
      ['step adaptor', (p) => ((p.spec.handlers[0] as any).adaptor = 'shell'), '$.spec.handlers[0].adaptor'],
      ['step acton', (p) => ((p.spec.handlers[1] as any).acton = 'run'), '$.spec.handlers[1].acton'],
      ['step with.comand', (p) => ((p.spec.handlers[0].with as any).comand = ['x']), '$.spec.handlers[0].with.comand'],
      [
        'step retries.delay',
        (p) => ((p.spec.handlers[0].retries as any).delay = 5),
        '$.spec.handlers[0].retries.delay',
      ],
      ['step when.var', (p) => ((p.spec.handlers[1].when as any).var = 'x'), '$.spec.handlers[1].when.var'],
      [
        'step rollback.adaptor',
        (p) => ((p.spec.handlers[0].rollback as any).adaptor = 'shell'),
        '$.spec.handlers[0].rollback.adaptor',
      ],
      ['spec.rollback.enable', (p) => ((p.spec.rollback as any).enable = true), '$.spec.rollback.enable'],
      [
        'rollback handler adaptor',
        (p) => ((p.spec.rollback.handlers[0] as any).adaptor = 'shell'),
        '$.spec.rollback.handlers[0].adaptor',
      ],
    ];
    for (const [what, mutate, path] of packageLevel) {
      it(`reports the package field ${what} at ${path}: /validate valid: false, /execute 400 and nothing created`, async () => {
        const req = richRequest();
        mutate(req.wpk_content as Pkg);
        const v = await postJson(agent, '/validate', { wpk_content: req.wpk_content });
        assertWellFormed(v, `/validate with ${what}`);
        assert.equal(v.status, 200, v.text);
        assert.equal(v.body.valid, false);
        assert.ok(
          v.body.errors.some(
            (e: { path: string; message: string }) => e.path === path && /unknown field/.test(e.message),
          ),
          `expected an unknown field at ${path}: ${v.text}`,
        );
        await refusedAt(req, what, path);
      });
    }

    it('refuses unknown parameters named like Object.prototype members (constructor, toString, __proto__)', async () => {
      const before = await executionCount(agent);
      for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
        const pkgJson = JSON.stringify(richPackage(uniqueName('proto')));
        const params = `{${JSON.stringify(name)}:"x","who":"alice"}`;
        const paths = assertRefused(
          await postJson(agent, '/execute', `{"wpk_content":${pkgJson},"parameters":${params},"dry_run":true}`),
          `/execute with parameter ${name}`,
          400,
          'validation_error',
        );
        assert.ok(paths.includes(`$.parameters.${name}`), `expected $.parameters.${name} in ${paths.join(', ')}`);
        const v = await postJson(agent, '/validate', `{"wpk_content":${pkgJson},"parameters":${params}}`);
        assert.equal(v.status, 200, v.text);
        assert.equal(v.body.valid, false, `${name}: ${v.text}`);
      }
      await assertInvariants(agent, witness, before);
    });

    it('reports a workflow_id that does not match the inline package in /validate as /execute refuses it', async () => {
      const req = richRequest();
      const other = { wpk_content: req.wpk_content, workflow_id: 'someone-else-1.0.0' };
      const v = await postJson(agent, '/validate', other);
      assertInvalidAt(v, ['$.workflow_id']);
      const before = await executionCount(agent);
      const paths = assertRefused(
        await postJson(agent, '/execute', { ...other, dry_run: true }),
        'mismatched workflow_id',
        400,
        'validation_error',
      );
      assert.deepEqual(paths, ['$.workflow_id']);
      await assertInvariants(agent, witness, before);
    });

    it('uses the default of a parameter named toString when none is given (not the inherited function)', async () => {
      const p = richPackage(uniqueName('tostring'));
      const spec = p.spec as any;
      spec.parameters = { toString: { type: 'string', default: 'plain' } };
      spec.handlers = [
        {
          name: 'show',
          adapter: 'shell',
          action: 'run',
          with: { command: ['printf', '%s', '${{ params.toString }}'] },
        },
      ];
      delete spec.rollback;
      const r = await postJson(agent, '/execute', { wpk_content: p, dry_run: true });
      assert.equal(r.status, 202, r.text);
      const rec = await raw(agent, 'GET', `/execute/${r.body.execution_id}`);
      assert.deepEqual(rec.body.parameters, { toString: 'plain' });
    });
  });

  it('answers every field of a valid request replaced by each other JSON type without a 5xx, naming the field when refused', async function () {
    this.timeout(120_000);
    const base = richRequest();
    const paths = allPaths(base);
    const before = await executionCount(agent);
    let accepted = 0;
    let refused = 0;
    const unrelated: string[] = [];
    const failures: string[] = [];
    for (const path of paths) {
      const original = path.reduce<any>((v, s) => v[s], base);
      for (const substitute of SUBSTITUTES) {
        if (kindOf(substitute) === kindOf(original)) continue;
        const body = setAt(base, path, substitute) as Record<string, unknown>;
        const what = `${jsonPath(path)} = ${JSON.stringify(substitute)}`;
        // Problems inside the package are reported with package paths; the rest with request paths.
        const expected = path[0] === 'wpk_content' ? jsonPath(path.slice(1)) : jsonPath(path);
        const related = (p: string) =>
          p === expected ||
          p.startsWith(`${expected}.`) ||
          p.startsWith(`${expected}[`) ||
          (p !== '$' && expected.startsWith(p)) ||
          (p === '$' && path.length <= 2);

        const e = await postJson(agent, '/execute', body);
        const v =
          path[0] === 'dry_run' || path[0] === 'rollback_on_failure'
            ? undefined
            : await postJson(agent, '/validate', { wpk_content: body.wpk_content, parameters: body.parameters });
        try {
          assertWellFormed(e, `/execute ${what}`);
          if (e.status === 202) accepted++;
          else {
            refused++;
            const errs = assertRefused(e, `/execute ${what}`, 400, 'validation_error');
            if (!errs.some(related)) unrelated.push(`/execute ${what}: ${errs.join(', ')}`);
          }
          if (!v) continue;
          assertWellFormed(v, `/validate ${what}`);
          const problems: string[] =
            v.status === 200
              ? v.body.errors.map((x: { path: string }) => x.path)
              : assertRefused(v, `/validate ${what}`, 400, 'validation_error');
          if (v.status === 200 && v.body.valid)
            assert.equal(e.status, 202, `${what}: /validate says valid, /execute refused: ${e.text}`);
          if (problems.length && !problems.some(related)) unrelated.push(`/validate ${what}: ${problems.join(', ')}`);
        } catch (err) {
          failures.push((err as Error).message.split('\n')[0]);
        }
      }
    }
    assert.deepEqual(failures, [], 'answers that broke the rules');
    assert.deepEqual(unrelated, [], 'a refusal that does not name the replaced field');
    assert.ok(refused > 100 && accepted > 0, `refused ${refused}, accepted ${accepted}`);
    if (process.env.HOSTILE_VERBOSE) console.log(`      ${refused} refused, ${accepted} accepted (dry runs)`);
    // Exactly the accepted ones (dry runs) were created; the refused ones left nothing behind.
    assert.equal(await executionCount(agent), before + accepted);
    await assertInvariants(agent, witness);
  });
});
