import assert from 'node:assert/strict';
import http from 'node:http';
import { useAgent } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { AGENT_VERSION, assertServing, call, errorPaths, executionCount, uniqueName } from './http-support.js';

describe('HTTP API: health, readiness and error answers', () => {
  const agent = useAgent();

  it('GET /health reports status, version, uptime, execution counts and each adapter with its actions', async () => {
    const r = await call(agent, 'GET', '/health');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(r.body.status, 'ok');
    assert.equal(r.body.version, AGENT_VERSION);
    assert.ok(
      Number.isInteger(r.body.uptime_seconds) && r.body.uptime_seconds >= 0,
      `uptime_seconds: ${r.body.uptime_seconds}`,
    );
    assert.equal(r.body.active_executions, 0);
    assert.equal(r.body.queued_executions, 0);
    assert.equal(r.body.adapters.shell.ready, true);
    assert.equal(r.body.adapters.api.ready, true);
    const shellRun = r.body.adapters.shell.actions.find((a: { id: string }) => a.id === 'run');
    assert.ok(shellRun, 'shell adapter lists its run action');
    assert.equal(shellRun.mutates, true);
    assert.equal(typeof shellRun.description, 'string');
    assert.ok(
      r.body.adapters.api.actions.some((a: { id: string }) => a.id === 'request'),
      'api adapter lists its request action',
    );
  });

  it('GET /ready answers 200 with ready: true while the store is open', async () => {
    const r = await call(agent, 'GET', '/ready');
    assert.equal(r.status, 200);
    assert.equal(r.body.ready, true);
    assert.deepEqual(r.body.reasons, []);
  });

  it('answers an unknown route with 404 not_found as JSON', async () => {
    for (const [method, path] of [
      ['GET', '/no-such-route'],
      ['POST', '/execute/abc/resume'],
      ['GET', '/v2/health'],
    ]) {
      const r = await call(agent, method, path);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(r.body.error_type, 'not_found');
      assert.ok(r.body.message.includes(path), `the message names the path: ${r.body.message}`);
    }
  });

  it('answers a wrong method on a known route with 405 JSON naming the allowed methods', async () => {
    for (const [method, path, allowed] of [
      ['DELETE', '/health', 'GET'],
      ['GET', '/execute', 'POST'],
      ['PUT', '/validate', 'POST'],
      ['POST', '/metrics', 'GET'],
    ]) {
      const r = await call(agent, method, path);
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.ok(
        r.headers.get('allow')?.includes(allowed),
        `Allow header of ${method} ${path}: ${r.headers.get('allow')}`,
      );
      assert.ok(r.body.message.includes(allowed), `the message names the allowed method ${allowed}: ${r.body.message}`);
    }
  });

  it('answers a body that is not JSON with 400 validation_error and queues nothing', async () => {
    const before = await executionCount(agent);
    for (const body of ['not json', '{"workflow_id": "rollback-demo-1.0.0",', '']) {
      const r = await call(agent, 'POST', '/execute', body);
      assert.equal(r.status, 400, `body ${JSON.stringify(body)}`);
      assert.equal(r.body.error_type, 'validation_error');
      assert.deepEqual(errorPaths(r), ['$']);
    }
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it('answers a JSON body that is not an object, or has wrongly typed fields, with 400 listing each field', async () => {
    const arr = await call(agent, 'POST', '/execute', [1, 2]);
    assert.equal(arr.status, 400);
    assert.deepEqual(errorPaths(arr), ['$']);

    const typed = await call(agent, 'POST', '/execute', {
      workflow_id: 7,
      parameters: [],
      dry_run: 'yes',
      rollback_on_failure: 1,
    });
    assert.equal(typed.status, 400);
    assert.equal(typed.body.error_type, 'validation_error');
    assert.deepEqual(errorPaths(typed).sort(), ['$.dry_run', '$.parameters', '$.rollback_on_failure', '$.workflow_id']);
    await assertServing(agent);
  });

  it('answers an unknown field in the /execute body with 400 naming it, and queues nothing', async () => {
    const before = await executionCount(agent);
    const r = await call(agent, 'POST', '/execute', {
      workflow_id: 'rollback-demo-1.0.0',
      paramters: { workdir: '/tmp/x' },
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error_type, 'validation_error');
    assert.deepEqual(errorPaths(r), ['$.paramters']);
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it('answers an unknown workflow_id with 404 not_found that lists the bundled workflows', async () => {
    const r = await call(agent, 'POST', '/execute', { workflow_id: 'no-such-workflow-9.9.9' });
    assert.equal(r.status, 404);
    assert.equal(r.body.error_type, 'not_found');
    assert.ok(r.body.message.includes('no-such-workflow-9.9.9'));
    assert.ok(r.body.message.includes('rollback-demo-1.0.0'), `the message says what is known: ${r.body.message}`);
    const v = await call(agent, 'POST', '/validate', { workflow_id: 'no-such-workflow-9.9.9' });
    assert.equal(v.status, 404);
    assert.equal(v.body.error_type, 'not_found');
    await assertServing(agent);
  });

  it('answers 404 not_found for every per-execution route given an unknown id', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [
      ['GET', `/execute/${id}`],
      ['POST', `/execute/${id}/cancel`],
      ['POST', `/rollback/${id}`],
      ['GET', `/logs/${id}`],
      ['GET', `/logs/${id}?follow=true`],
    ]) {
      const r = await call(agent, method, path);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(r.body.error_type, 'not_found');
      assert.ok(r.body.message.includes(id), `the message names the id: ${r.body.message}`);
    }
    await assertServing(agent);
  });

  it('answers an invalid inline package with 400 listing every problem with its path, and queues nothing', async () => {
    const before = await executionCount(agent);
    const bad = pkg('Bad_Name', [
      { ...shellStep('a', ['true']), retires: { count: 1 } },
      { name: 'b', adapter: 'k9s', action: 'run', with: {} },
      shellStep('c', ['echo', '${{ params.nope }}']),
    ]);
    const r = await call(agent, 'POST', '/execute', { wpk_content: bad });
    assert.equal(r.status, 400);
    assert.equal(r.body.error_type, 'validation_error');
    const paths = errorPaths(r);
    for (const p of [
      '$.metadata.name',
      '$.spec.handlers[0].retires',
      '$.spec.handlers[1].adapter',
      '$.spec.handlers[2].with.command[1]',
    ]) {
      assert.ok(paths.includes(p), `expected a problem at ${p}; got ${paths.join(', ')}`);
    }
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it('answers a wpk_content whose workflow_id disagrees with the given workflow_id with 400', async () => {
    const name = uniqueName('mismatch');
    const r = await call(agent, 'POST', '/execute', {
      workflow_id: 'other-1.0.0',
      wpk_content: pkg(name, [shellStep('a', ['true'])]),
    });
    assert.equal(r.status, 400);
    assert.deepEqual(errorPaths(r), ['$.workflow_id']);
  });

  it('answers an Idempotency-Key longer than 255 characters with 400', async () => {
    const r = await call(
      agent,
      'POST',
      '/execute',
      { wpk_content: pkg(uniqueName('idem-long'), [shellStep('a', ['true'])]) },
      { 'Idempotency-Key': 'k'.repeat(256) },
    );
    assert.equal(r.status, 400);
    assert.deepEqual(errorPaths(r), ['header.Idempotency-Key']);
  });
});

describe('HTTP API: request body limit (BODY_LIMIT_BYTES=2048)', () => {
  const agent = useAgent({ env: { BODY_LIMIT_BYTES: '2048' } });

  const withPadding = (bytes: number) => {
    const name = uniqueName('big');
    const make = (arg: string) => JSON.stringify({ wpk_content: pkg(name, [shellStep('a', ['echo', arg])]) });
    const text = make('x'.repeat(bytes - make('').length));
    assert.equal(text.length, bytes);
    return text;
  };

  it('answers a body over the limit with 413 payload_too_large and queues nothing', async () => {
    const before = await executionCount(agent);
    for (const path of ['/execute', '/validate']) {
      const r = await call(agent, 'POST', path, withPadding(2049));
      assert.equal(r.status, 413, path);
      assert.equal(r.body.error_type, 'payload_too_large');
      assert.equal(r.body.details.limit_bytes, 2048);
    }
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it('answers a chunked body (no Content-Length) that grows past the limit with 413', async () => {
    const body = withPadding(6000);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        `${agent.url}/execute`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000));
      req.end();
    });
    assert.equal(answer.status, 413);
    assert.equal(JSON.parse(answer.text).error_type, 'payload_too_large');
    await assertServing(agent);
  });

  it('accepts a body exactly at the limit', async () => {
    const r = await call(agent, 'POST', '/execute', withPadding(2048));
    assert.equal(r.status, 202, r.text);
  });
});
