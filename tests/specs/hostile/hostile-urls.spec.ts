/**
 * Hostile URLs, methods and raw HTTP: path traversal, ids that are not UUIDs (long, NUL, unicode, broken
 * percent-encoding), query parameters of the wrong shape, unknown methods, and requests the HTTP parser
 * itself refuses. Never a 5xx, never a file's content, the witness intact and the agent serving.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { useAgent } from '../support/agent-process.js';
import {
  assertInvariants,
  assertRefused,
  assertWellFormed,
  executionCount,
  raw,
  type RawReply,
  useWitness,
} from './hostile-support.js';

/** Text that only a file from the machine would hold. */
const FILE_CONTENT = /root:.*:0:0:|BEGIN [A-Z ]*PRIVATE KEY|"dependencies"\s*:|\[boot loader\]/;

/** The per-execution routes for `id`, as [method, path]: record, log (also followed), cancel, rollback. */
function executionRoutes(id: string, { follow = false } = {}): Array<[string, string]> {
  return [
    ['GET', `/execute/${id}`],
    ['GET', `/logs/${id}`],
    ...(follow ? [['GET', `/logs/${id}?follow=true`] as [string, string]] : []),
    ['POST', `/execute/${id}/cancel`],
    ['POST', `/rollback/${id}`],
  ];
}

describe('hostile input: URLs, methods and raw HTTP', function () {
  this.timeout(30_000);
  const agent = useAgent();
  const witness = useWitness(agent);

  /** The request is refused with one of the statuses, well formed, holds no file content; nothing is created. */
  async function refuseEach(
    requests: Array<[string, string]>,
    statuses: number[],
    types: string[],
  ): Promise<RawReply[]> {
    const before = await executionCount(agent);
    const replies: RawReply[] = [];
    for (const [method, path] of requests) {
      const r = await raw(agent, method, path);
      assertRefused(r, `${method} ${path.slice(0, 120)}`, statuses, types, path);
      assert.doesNotMatch(r.text, FILE_CONTENT, `${method} ${path} answered with a file's content`);
      replies.push(r);
    }
    await assertInvariants(agent, witness, before);
    return replies;
  }

  it('answers path traversal in every per-execution route with 404 not_found, never a file', async () => {
    const traversals = [
      '..',
      '..%2F..%2Fetc%2Fpasswd',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '..%5C..%5Cwindows%5Cwin.ini',
      '%252e%252e%252fetc%252fpasswd',
      '....//....//etc/passwd',
      '..;',
      '%2e%2e%2fhealth',
      '%2e%2e%2fpackage.json',
    ];
    const requests = traversals.flatMap((t) => executionRoutes(t, { follow: true }));
    requests.push(
      ['GET', '/execute/../health'],
      ['GET', '/logs/../../etc/passwd'],
      ['GET', '/%2e%2e/%2e%2e/etc/passwd'],
      ['GET', '/..;/health'],
      ['GET', '/execute/%2e%2e/health'],
      ['GET', '/static/../../package.json'],
    );
    await refuseEach(requests, [404], ['not_found']);
  });

  it('answers ids that are not UUIDs (empty-ish, long, NUL, unicode, broken percent-encoding) with 404 not_found', async () => {
    const ids = [
      'not-a-uuid',
      'x',
      '%20',
      '00000000-0000-0000-0000-000000000000',
      'a'.repeat(4000),
      'a%00b',
      '%00',
      '%F0%9F%98%80',
      '%E2%80%AE',
      '%',
      '%E0%A4%A',
      '%ff%fe',
      '%C0%AE%C0%AE',
      "1'%20OR%20'1'='1",
      '1%3B%20DROP%20TABLE%20executions',
      '%7B%7B7*7%7D%7D',
      '%24%7B%7B%20params.x%20%7D%7D',
    ];
    await refuseEach(
      ids.flatMap((id) => executionRoutes(id)),
      [404],
      ['not_found'],
    );
    // The store still answers normally afterwards (an id like a SQL injection did nothing).
    assert.equal((await raw(agent, 'GET', `/execute/${witness.id}`)).status, 200);
  });

  it('tells ids apart exactly: the witness id in upper case, with a NUL or with a suffix is another (unknown) id', async () => {
    await refuseEach(
      [
        ['GET', `/execute/${witness.id.toUpperCase()}`],
        ['GET', `/execute/${witness.id}%00`],
        ['GET', `/execute/${witness.id}x`],
        ['GET', `/execute/${witness.id.slice(0, -1)}`],
        ['GET', `/logs/%20${witness.id}`],
        ['GET', `/execute//${witness.id}`],
      ],
      [404],
      ['not_found'],
    );
  });

  it('answers a URL too long for the HTTP parser with a bare 414/431 from it, and keeps serving', async () => {
    // Node's parser answers before the app sees the request, so this one is not a JSON error body.
    const r = await raw(agent, 'GET', `/execute/${'a'.repeat(20_000)}`);
    assert.ok([414, 431].includes(r.status), `got ${r.status}`);
    await assertInvariants(agent, witness);
  });

  it('answers query parameters of the wrong shape, unknown or repeated ones with 400 naming them', async () => {
    const before = await executionCount(agent);
    const bad: Array<[string, string]> = [
      ['/executions?limit=1e309', 'query.limit'],
      ['/executions?limit=-1', 'query.limit'],
      ['/executions?limit=0x10', 'query.limit'],
      ['/executions?limit=%00', 'query.limit'],
      ['/executions?limit=99999999999999999999999', 'query.limit'],
      ['/executions?status=running%00', 'query.status'],
      ['/executions?status=%27%20OR%201%3D1', 'query.status'],
      ['/executions?cursor=%ff', 'query.cursor'],
      [`/executions?cursor=${'A'.repeat(3000)}`, 'query.cursor'],
      ['/executions?cursor=LTE', 'query.cursor'], // "-1"
      [`/logs/${witness.id}?since=-1`, 'query.since'],
      [`/logs/${witness.id}?since=99999999999999999999`, 'query.since'],
      [`/logs/${witness.id}?limit=abc`, 'query.limit'],
      [`/logs/${witness.id}?follow=maybe`, 'query.follow'],
      [`/logs/${witness.id}?follow=true&since=NaN`, 'query.since'],
      // Unknown parameters are refused, as unknown body fields are, and a parameter means one value.
      ['/executions?limit[]=1', 'query.limit[]'],
      ['/executions?limit=1&limit=2', 'query.limit'],
      ['/executions?unknown=1', 'query.unknown'],
      [`/execute/${witness.id}?x=1`, 'query.x'],
    ];
    for (const [path, field] of bad) {
      const paths = assertRefused(
        await raw(agent, 'GET', path),
        `GET ${path.slice(0, 100)}`,
        400,
        'validation_error',
        path,
      );
      assert.deepEqual(paths, [field], path);
    }
    for (const path of [
      '/executions?workflow_id=%00',
      `/logs/${witness.id}?step=%00`,
      `/logs/${witness.id}?step=../../etc`,
    ]) {
      const r = await raw(agent, 'GET', path);
      assertWellFormed(r, `GET ${path}`, path);
      assert.equal(r.status, 200, `${path}: ${r.text.slice(0, 300)}`);
    }
    await assertInvariants(agent, witness, before);
  });

  it('answers methods the router does not know (TRACE, PROPFIND, …) with 405 JSON naming the allowed ones, or 404 on an unknown path', async () => {
    const before = await executionCount(agent);
    for (const [method, path, allowed] of [
      ['TRACE', '/health', 'GET'],
      ['PROPFIND', '/execute', 'POST'],
      ['MKCOL', `/execute/${witness.id}`, 'GET'],
      ['PURGE', '/validate', 'POST'],
      ['LINK', '/metrics', 'GET'],
    ]) {
      const r = await raw(agent, method, path);
      assertRefused(r, `${method} ${path}`, 405, 'validation_error', path);
      assert.ok(String(r.headers.allow).includes(allowed), `${method} ${path}: Allow ${r.headers.allow}`);
    }
    assertRefused(await raw(agent, 'TRACE', '/no-such-route'), 'TRACE /no-such-route', 404, 'not_found');
    // The FlowRunner control API keeps FastAPI's shape for them.
    const api = await raw(agent, 'TRACE', '/api/health');
    assert.equal(api.status, 405);
    assert.deepEqual(api.body, { detail: 'Method Not Allowed' });
    await assertInvariants(agent, witness, before);
  });

  it('keeps an audit log that still reads back after all of it, with the hostile paths kept as they came', async () => {
    const r = await raw(agent, 'GET', '/audit?limit=1000');
    assertWellFormed(r, 'GET /audit');
    assert.equal(r.status, 200);
    const paths = r.body.entries.map((e: { path: string }) => e.path);
    assert.ok(paths.includes('/rollback/not-a-uuid'), `refused calls are audited: ${paths.slice(0, 20).join(', ')}`);
    assert.ok(paths.includes('/execute/a%00b/cancel'), 'a path with an encoded NUL is kept as it came');
  });

  describe('raw HTTP the parser refuses', () => {
    /** Writes bytes on a fresh connection and reads until the agent closes it. */
    function sendRaw(text: string): Promise<{ status: number; text: string }> {
      return new Promise((resolve, reject) => {
        const socket = net.connect(agent.port, '127.0.0.1');
        let got = '';
        socket.setEncoding('latin1');
        socket.on('data', (d) => (got += d));
        socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
        socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0), text: got }));
        socket.end(text, 'latin1');
      });
    }

    for (const [what, text] of [
      ['a raw NUL byte in the path', 'GET /execute/a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['a space in the path', 'GET /execute/a b HTTP/1.1\r\nHost: x\r\n\r\n'],
      [
        'Content-Length and Transfer-Encoding together (request smuggling)',
        'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ],
      ['a negative Content-Length', 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'],
      [
        'two different Content-Lengths',
        'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
      ],
      [
        'a broken chunk size',
        'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      ],
      ['an unknown HTTP version', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n'],
      ['a header without a colon', 'GET /health HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n'],
      ['binary garbage', '\u0001\u0002\u0003\u00ff garbage\r\n\r\n'],
    ] as const) {
      it(`answers ${what} with a 4xx and keeps serving`, async () => {
        const before = await executionCount(agent);
        const r = await sendRaw(text);
        assert.ok(r.status >= 400 && r.status < 500, `got ${r.status}: ${r.text.slice(0, 300)}`);
        assert.doesNotMatch(r.text, /\n\s+at\s/);
        await assertInvariants(agent, witness, before);
      });
    }

    it('refuses a body shorter than its Content-Length when the client hangs up, without an error incident, and creates nothing', async () => {
      const before = await executionCount(agent);
      const body = JSON.stringify({ workflow_id: 'rollback-demo-1.0.0', dry_run: true });
      await sendRaw(
        `POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 50}\r\n\r\n${body}`,
      );
      await assertInvariants(agent, witness, before);
    });
  });
});
