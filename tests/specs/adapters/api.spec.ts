import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { createApiAdapter } from '../../../adapters/api/index.js';
import { USE_EXAMPLE_OUTPUT } from '../../../adapters/contract.js';
import { AgentError } from '../../../adapters/errors.js';
import { mutatesWith } from '../../../services/runtime-agent/src/adapter-registry.js';
import { runChecked } from '../support/outputs.js';
import { stepContext } from '../support/step-context.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** What the target answers by path (status, headers, body); any other path but /hang gets an empty 200. */
const ANSWERS: Record<string, [number, http.OutgoingHttpHeaders, string?]> = {
  '/json': [
    200,
    { 'Content-Type': 'application/json; charset=utf-8', 'X-Request-Id': 'req-42' },
    JSON.stringify({ items: [{ id: 'a' }, { id: 'b' }], ok: true }),
  ],
  '/echo': [201, { 'Content-Type': 'text/plain' }, 'created'],
  '/unavailable': [503, { 'Content-Type': 'text/plain' }, 'down for maintenance'],
  '/missing': [404, { 'Content-Type': 'application/json' }, '{"error":"no such thing"}'],
  '/redirect': [302, { Location: '/json' }],
};

const request = createApiAdapter().actions.request;

/** Runs the action and returns the AgentError it must reject with. */
async function failure(input: Record<string, unknown>, ctx = stepContext().ctx): Promise<AgentError> {
  try {
    await request.run(ctx, input);
  } catch (err) {
    assert.ok(err instanceof AgentError, `expected an AgentError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the request to fail');
}

describe('api adapter: request', () => {
  let server: http.Server;
  let base: string;
  const seen: Seen[] = [];
  /** Responses the "hang" route holds open; ended in afterEach. */
  const held: http.ServerResponse[] = [];
  /** Resolves waiters when a request reaches the server. */
  let arrivals: Array<() => void> = [];
  const nextArrival = () => new Promise<void>((resolve) => arrivals.push(resolve));

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        const waiting = arrivals;
        arrivals = [];
        for (const resolve of waiting) resolve();
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        if (path === '/hang') return void held.push(res);
        const [status, headers, body] = ANSWERS[path] ?? [200, {}];
        res.writeHead(status, headers).end(body);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    seen.length = 0;
  });

  afterEach(() => {
    for (const res of held.splice(0)) res.destroy();
  });

  after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  it('sends a GET with query and headers exactly and parses the JSON answer', async () => {
    const { ctx, logs } = stepContext();
    const out = await runChecked(request, ctx, {
      method: 'GET',
      url: `${base}/json?fixed=1`,
      query: { q: 'a b', n: 3, flag: true },
      headers: { 'X-Trace': 'abc', Accept: 'application/json' },
    });
    assert.equal(seen.length, 1);
    assert.equal(seen[0].method, 'GET');
    assert.equal(seen[0].url, '/json?fixed=1&q=a+b&n=3&flag=true');
    assert.equal(seen[0].headers['x-trace'], 'abc');
    assert.equal(seen[0].headers.accept, 'application/json');
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { items: [{ id: 'a' }, { id: 'b' }], ok: true });
    const headers = out.headers as Record<string, unknown>;
    assert.equal(headers['x-request-id'], 'req-42');
    assert.ok(Object.keys(headers).every((k) => k === k.toLowerCase()));
    const infos = logs.filter((l) => l.level === 'info');
    assert.equal(infos.length, 1);
    assert.match(
      infos[0].message,
      /^GET http:\/\/127\.0\.0\.1:\d+\/json\?fixed=1&q=a\+b&n=3&flag=true → 200 in \d+ ms$/,
    );
  });

  it('POSTs json with content-type application/json and a string body verbatim', async () => {
    const { ctx } = stepContext();
    const out = await runChecked(request, ctx, { method: 'POST', url: `${base}/echo`, json: { name: 'x', n: [1, 2] } });
    assert.equal(out.status, 201);
    assert.equal(out.body, 'created');
    assert.equal(seen[0].method, 'POST');
    assert.equal(seen[0].headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(seen[0].body), { name: 'x', n: [1, 2] });

    const raw = 'line one\n{"not": parsed} ü';
    await request.run(ctx, {
      method: 'PUT',
      url: `${base}/echo`,
      body: raw,
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(seen[1].method, 'PUT');
    assert.equal(seen[1].body, raw);
    assert.equal(seen[1].headers['content-type'], 'text/plain');
  });

  it('gives an empty body as an empty string', async () => {
    const out = await runChecked(request, stepContext().ctx, { url: `${base}/empty` });
    assert.equal(out.status, 200);
    assert.equal(out.body, '');
  });

  it('extracts status, headers in any case, body paths and implicit body paths; a missing path gives null and a warning', async () => {
    const { ctx, logs } = stepContext();
    const out = await runChecked(request, ctx, {
      url: `${base}/json`,
      extract: {
        code: '.status',
        requestId: 'headers.x-REQUEST-id',
        whole: 'body',
        second: 'body.items[1].id',
        first: 'items[0].id',
        nothing: 'body.items[5].id',
      },
    });
    assert.equal(out.code, 200);
    assert.equal(out.requestId, 'req-42');
    assert.deepEqual(out.whole, out.body);
    assert.equal(out.second, 'b');
    assert.equal(out.first, 'a');
    assert.ok('nothing' in out);
    assert.equal(out.nothing, null);
    const warns = logs.filter((l) => l.level === 'warn');
    assert.equal(warns.length, 1);
    assert.match(warns[0].message, /nothing/);
    assert.match(warns[0].message, /body\.items\[5\]\.id/);
  });

  describe('expectStatus', () => {
    it('fails a 503 by default with http_status, the status and the body', async () => {
      const err = await failure({ method: 'POST', url: `${base}/unavailable`, json: {} });
      assert.equal(err.type, 'http_status');
      assert.equal(err.details.status, 503);
      assert.equal(err.details.body, 'down for maintenance');
      assert.equal(err.message, `POST ${base}/unavailable answered 503; expected 2xx`);
    });

    it('declares GET, HEAD and OPTIONS as not changing anything, every other method as changing', () => {
      assert.equal(mutatesWith(request), true);
      for (const method of ['GET', 'HEAD', 'OPTIONS', undefined] as const)
        assert.equal(mutatesWith(request, { url: base, method }), false, String(method));
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const)
        assert.equal(mutatesWith(request, { url: base, method }), true, method);
    });

    it('marks 5xx answers retryable for the engine and 4xx ones not', async () => {
      assert.equal((await failure({ url: `${base}/unavailable` })).retryable, true);
      assert.equal((await failure({ url: `${base}/missing` })).retryable, false);
    });

    it("accepts 503 when ['5xx'] is expected", async () => {
      const out = await runChecked(request, stepContext().ctx, { url: `${base}/unavailable`, expectStatus: ['5xx'] });
      assert.equal(out.status, 503);
      assert.equal(out.body, 'down for maintenance');
    });

    it('accepts 404 when [404] is expected and parses its JSON body', async () => {
      const out = await runChecked(request, stepContext().ctx, { url: `${base}/missing`, expectStatus: [404] });
      assert.equal(out.status, 404);
      assert.deepEqual(out.body, { error: 'no such thing' });
      const err = await failure({ url: `${base}/missing`, expectStatus: [400, '5xx'] });
      assert.equal(err.type, 'http_status');
      assert.match(err.message, /answered 404; expected 400, 5xx$/);
    });

    it('does not follow a 302 by default, so it fails', async () => {
      const err = await failure({ url: `${base}/redirect` });
      assert.equal(err.type, 'http_status');
      assert.equal(err.details.status, 302);
      assert.deepEqual(
        seen.map((s) => s.url),
        ['/redirect'],
      );
    });

    it('follows the redirect when followRedirects is true', async () => {
      const out = await runChecked(request, stepContext().ctx, { url: `${base}/redirect`, followRedirects: true });
      assert.equal(out.status, 200);
      assert.equal((out.body as { ok: boolean }).ok, true);
      assert.deepEqual(
        seen.map((s) => s.url),
        ['/redirect', '/json'],
      );
    });

    it('hits a failing server exactly once per call (got does not retry)', async () => {
      await failure({ url: `${base}/unavailable` });
      assert.equal(seen.length, 1);
      await failure({ url: `${base}/unavailable` });
      assert.equal(seen.length, 2);
    });
  });

  it('times out after timeoutMs with type timeout and sends the request once', async () => {
    const started = Date.now();
    const err = await failure({ url: `${base}/hang`, timeoutMs: 200 });
    assert.equal(err.type, 'timeout');
    assert.match(err.message, /200 ms/);
    assert.ok(Date.now() - started < 5000);
    assert.equal(seen.length, 1);
    assert.equal(held.length, 1);
  });

  it('reports a refused connection as network_error with its code', async () => {
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    closed.close();
    await once(closed, 'close');
    const err = await failure({ url: `http://127.0.0.1:${port}/x` });
    assert.equal(err.type, 'network_error');
    assert.equal(err.details.code, 'ECONNREFUSED');
    assert.match(err.message, /ECONNREFUSED/);
  });

  it('rejects promptly with cancelled when the signal aborts mid-request', async () => {
    const { ctx, controller } = stepContext();
    const arrived = nextArrival();
    const pending = failure({ url: `${base}/hang` }, ctx);
    await arrived;
    const abortedAt = Date.now();
    controller.abort(new Error('cancel requested'));
    const err = await pending;
    assert.equal(err.type, 'cancelled');
    assert.ok(Date.now() - abortedAt < 1000, 'cancel took too long');
    assert.equal(held.length, 1);
  });

  it('rejects with cancelled when the signal is already aborted and sends nothing', async () => {
    const { ctx, controller } = stepContext();
    controller.abort();
    const err = await failure({ url: `${base}/json` }, ctx);
    assert.equal(err.type, 'cancelled');
    assert.equal(seen.length, 0);
  });

  it('dry run sends nothing and logs the rendered request with secrets masked', async () => {
    const { ctx, logs } = stepContext();
    ctx.dryRun = true;
    const input = {
      method: 'POST' as const,
      url: `${base}/json`,
      query: { page: 2 },
      headers: { Authorization: 'Bearer s3cr3t-token', 'X-Api-Key': 'k3y', 'X-Trace': 'visible' },
      json: { hello: 'world' },
    };
    const out = await request.run(ctx, input);
    assert.equal(out, USE_EXAMPLE_OUTPUT);
    assert.equal(seen.length, 0);
    const text = logs.map((l) => l.message).join('\n');
    assert.ok(text.includes(`dry run: would send POST ${base}/json?page=2`), text);
    assert.ok(!text.includes('s3cr3t-token'), text);
    assert.ok(!text.includes('k3y'), text);
    assert.match(text, /"Authorization":"\*\*\*"/);
    assert.match(text, /"X-Trace":"visible"/);
    assert.match(text, /application\/json/);
    assert.ok(text.includes('{"hello":"world"}'), text);
  });

  it('dry run masks a password in the URL', async () => {
    const { ctx, logs } = stepContext();
    await request.run({ ...ctx, dryRun: true }, { url: 'http://user:hunter2@127.0.0.1:9/x' });
    assert.equal(seen.length, 0);
    assert.ok(
      logs.some((l) => l.message === 'dry run: would send GET http://user:***@127.0.0.1:9/x'),
      JSON.stringify(logs),
    );
    assert.ok(logs.every((l) => !l.message.includes('hunter2')));
  });

  describe('refused input', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    const validate = ajv.compile(request.input);

    it('schema refuses json and body together but accepts either alone', () => {
      assert.equal(validate({ url: 'http://127.0.0.1/x', json: { a: 1 }, body: 'x' }), false);
      assert.ok(validate.errors?.some((e) => e.keyword === 'not'));
      assert.equal(validate({ url: 'http://127.0.0.1/x', json: { a: 1 } }), true);
      assert.equal(validate({ url: 'http://127.0.0.1/x', body: 'x' }), true);
    });

    it('schema refuses reserved extract names, bad statuses and unknown fields', () => {
      assert.equal(validate({ url: 'http://127.0.0.1/x', extract: { status: '.status' } }), false);
      assert.equal(validate({ url: 'http://127.0.0.1/x', extract: { code: '.status' } }), true);
      assert.equal(validate({ url: 'http://127.0.0.1/x', expectStatus: ['6xx'] }), false);
      assert.equal(validate({ url: 'http://127.0.0.1/x', expectStatus: [99] }), false);
      assert.equal(validate({ url: 'http://127.0.0.1/x', expectStatus: [204, '3xx'] }), true);
      assert.equal(validate({ url: 'http://127.0.0.1/x', retries: 3 }), false);
    });

    it('every input property has a description', () => {
      const props = (request.input as { properties: Record<string, { description?: string }> }).properties;
      for (const [name, schema] of Object.entries(props)) assert.ok(schema.description, `${name} has no description`);
    });

    it('run refuses a non-http URL with a non-retryable validation_error and sends nothing', async () => {
      for (const url of ['ftp://127.0.0.1/x', '/relative/path', 'file:///etc/passwd']) {
        const err = await failure({ url });
        assert.equal(err.type, 'validation_error', url);
        assert.equal(err.retryable, false);
      }
      const { ctx } = stepContext();
      await assert.rejects(async () => request.run({ ...ctx, dryRun: true }, { url: 'ftp://127.0.0.1/x' }), {
        type: 'validation_error',
      });
      const headBody = await failure({ method: 'HEAD', url: `${base}/json`, body: 'x' });
      assert.equal(headBody.type, 'validation_error');
      assert.equal(seen.length, 0);
    });
  });
});
