/**
 * One unique secret per source, carried through every adapter of a running
 * agent, and then searched for everywhere the agent shows or keeps anything:
 * API answers, the log stream (plain and followed), metrics, the audit log,
 * the agent's own stdout, and the raw bytes of the SQLite file and its WAL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawStoreText, startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { pkg, shellStep } from '../support/packages.js';
import { SseReader } from '../http/http-support.js';

const ENDED = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];
const unique = (what: string) => `${what}-${randomBytes(12).toString('hex')}`;

describe('secrets never leak, through every adapter', function () {
  this.timeout(60_000);
  let dir: string;
  let agent: AgentProcess;
  let kube: FakeKube;
  let server: Server;
  let target: string;
  const ids: string[] = [];
  /** Each must appear nowhere the agent shows or stores anything. */
  const secrets = {
    param: unique('param'), // a secret: true parameter (shell argv and env, api header, k8s Secret, flowrunner header)
    cookie: unique('cookie'), // a Set-Cookie value the target answers with
    kubeSecret: unique('kubesecret'), // a value inside a Kubernetes Secret the agent reads
    errorEcho: unique('echo'), // the target echoes the Authorization header in a failing answer
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-secrets-'));
    server = createServer((req, res) => {
      if (req.url === '/login') {
        res.setHeader('set-cookie', `session=${secrets.cookie}; Path=/; HttpOnly`);
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ ok: true, you_sent: req.headers.authorization }));
      }
      if (req.url === '/fail') {
        res.statusCode = 500;
        return res.end(`upstream refused ${req.headers.authorization} and ${req.headers['x-echo']}`);
      }
      res.end(`hello ${req.headers.authorization ?? req.headers.cookie ?? ''}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    kube = await startFakeKube();
    kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'default' },
      type: 'Opaque',
      data: { password: Buffer.from(secrets.kubeSecret).toString('base64') },
    });
    kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app-0', namespace: 'default', labels: { app: 'app' } },
      spec: { containers: [{ name: 'app', image: 'x' }] },
    });
    // An application that logs its own database password: read after the Secret, it is masked too.
    kube.setPodLogs('default', 'app-0', 'app', [{ text: `connecting with password ${secrets.kubeSecret}` }]);
    agent = await startAgent({
      env: { HOME: dir, K8S_SERVICE_ACCOUNT_DIR: join(dir, 'none'), KUBECONFIG: kube.writeKubeconfigFile(dir) },
    });

    const parameters = { token: { type: 'string', secret: true, required: true } };
    const bearer = 'Bearer ${{ params.token }}';
    const packages = [
      pkg(
        'secret-shell',
        [
          shellStep('argv', ['echo', 'token is', '${{ params.token }}']),
          shellStep('env', ['printenv', 'API_TOKEN'], {
            with: { command: ['printenv', 'API_TOKEN'], env: { API_TOKEN: '${{ params.token }}' } },
          }),
          shellStep('fails', ['sh', '-c', 'echo "bad $1" >&2; exit 3', 'sh', '${{ params.token }}']),
        ],
        { parameters },
      ),
      pkg(
        'secret-api',
        [
          {
            name: 'login',
            adapter: 'api',
            action: 'request',
            with: {
              url: `${target}/login`,
              headers: { Authorization: bearer },
              extract: { cookie: 'headers.set-cookie' },
            },
          },
          {
            name: 'reuse',
            adapter: 'api',
            action: 'request',
            with: { url: `${target}/hello`, headers: { Cookie: '${{ steps.login.outputs.cookie[0] }}' } },
          },
          {
            name: 'shout',
            adapter: 'shell',
            action: 'run',
            with: {
              command: ['echo', '${{ steps.login.outputs.cookie[0] }}', '${{ steps.login.outputs.body.you_sent }}'],
            },
          },
          {
            name: 'fail',
            adapter: 'api',
            action: 'request',
            with: {
              url: `${target}/fail`,
              headers: { Authorization: bearer, 'X-Echo': '${{ steps.login.outputs.cookie[0] }}' },
            },
          },
        ],
        { parameters },
      ),
      pkg(
        'secret-k8s',
        [
          { name: 'read', adapter: 'k8s', action: 'get', with: { kind: 'Secret', name: 'db' } },
          { name: 'logs', adapter: 'k8s', action: 'logs', with: { name: 'app-0' } },
          {
            name: 'write',
            adapter: 'k8s',
            action: 'apply',
            with: {
              manifest: {
                apiVersion: 'v1',
                kind: 'Secret',
                metadata: { name: 'api-token' },
                stringData: { token: '${{ params.token }}' },
              },
            },
          },
        ],
        { parameters },
      ),
      pkg(
        'secret-flowrunner',
        [
          {
            name: 'probe',
            adapter: 'flowrunner',
            action: 'run',
            with: {
              config: { flow_target_url: target, sim_users: 1 },
              flowmap: {
                name: 'p',
                headers: { Authorization: bearer },
                steps: [
                  {
                    id: 's1',
                    type: 'request',
                    method: 'GET',
                    url: '/hello',
                    headers: { 'X-Api-Key': '${{ params.token }}' },
                  },
                ],
              },
              iterations: 1,
            },
          },
        ],
        { parameters },
      ),
    ];
    for (const p of packages) {
      for (const dry_run of [false, true]) {
        const r = await agent.request('POST', '/execute', {
          wpk_content: p,
          parameters: { token: secrets.param },
          dry_run,
        });
        assert.equal(r.status, 202, `${p.metadata.name}: ${r.text}`);
        ids.push(r.body.execution_id);
      }
    }
    for (const id of ids) await waitForStatus(agent, id, ENDED, 30_000);
  });

  after(async () => {
    await agent?.stop();
    agent?.cleanup();
    await kube?.close();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ran every adapter for real (so the secrets went where they were meant to go)', async () => {
    const records = await Promise.all(ids.map(async (id) => (await agent.request('GET', `/execute/${id}`)).body));
    const step = (wf: string, name: string) =>
      records.find((r) => r.workflow_id === `${wf}-1.0.0` && !r.dry_run).steps.find((s: any) => s.name === name);
    assert.equal(step('secret-shell', 'env').status, 'succeeded');
    assert.equal(
      step('secret-shell', 'env').outputs.stdout.trim(),
      '***',
      'the process saw the real value; the record shows ***',
    );
    assert.equal(
      step('secret-api', 'reuse').status,
      'succeeded',
      JSON.stringify(
        records.find((r) => r.workflow_id === 'secret-api-1.0.0' && !r.dry_run),
        null,
        1,
      ),
    );
    assert.equal(
      step('secret-api', 'reuse').outputs.body,
      'hello ***',
      'the cookie reached the target and came back masked',
    );
    assert.equal(step('secret-api', 'fail').status, 'failed');
    assert.equal(step('secret-k8s', 'read').outputs.object.data.password, '***');
    assert.equal(step('secret-k8s', 'logs').status, 'succeeded');
    assert.equal(step('secret-k8s', 'write').status, 'succeeded');
    const applied = kube.get('v1', 'Secret', 'default', 'api-token');
    assert.equal(
      Buffer.from(applied?.data?.token ?? '', 'base64').toString() || applied?.stringData?.token,
      secrets.param,
      'the cluster got the real value',
    );
    assert.equal(step('secret-flowrunner', 'probe').status, 'succeeded');
  });

  it('shows none of them in records, lists, logs (plain and followed), metrics, audit or the agent log', async () => {
    const texts: string[] = [];
    texts.push((await agent.request('GET', '/executions?limit=500')).text);
    texts.push((await agent.request('GET', '/metrics')).text);
    texts.push((await agent.request('GET', '/audit?limit=1000')).text);
    for (const id of ids) {
      texts.push((await agent.request('GET', `/execute/${id}`)).text);
      texts.push((await agent.request('GET', `/logs/${id}?limit=10000`)).text);
      const sse = new SseReader(await fetch(`${agent.url}/logs/${id}?follow=true`));
      while (await sse.next());
      texts.push(JSON.stringify(sse.events));
    }
    texts.push(agent.output());
    const logs = texts.join('\n');
    assert.match(logs, /token is \*\*\*/, 'the masked argv line is there');
    assert.match(logs, /connecting with password \*\*\*/, 'the pod log line is there, masked');
    for (const [what, value] of Object.entries(secrets))
      assert.ok(!logs.includes(value), `${what} leaked into an answer or a log`);
  });

  it('keeps none of them in the raw SQLite file or its WAL', async () => {
    await agent.stop();
    const raw = rawStoreText(agent);
    assert.ok(raw.includes('secret-flowrunner'), 'the store has the executions');
    for (const [what, value] of Object.entries(secrets)) {
      assert.ok(!raw.includes(value), `${what} is in the store file`);
      assert.ok(!raw.includes(Buffer.from(value).toString('base64')), `${what} (base64) is in the store file`);
    }
  });
});
