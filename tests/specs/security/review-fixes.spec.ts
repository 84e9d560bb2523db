/**
 * What an independent review of the hardening found, each pinned by a test:
 * web pages reaching an agent without tokens, registered packages outliving a
 * signing key, secrets in percent-encoded or multi-line form, YAML values that
 * JSON cannot sign, unauthenticated route probing, and a null /init config.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { Redactor } from '../../../services/runtime-agent/src/engine/redact.js';
import { signPackage } from '../../../services/runtime-agent/src/wpk/signature.js';
import { freshDataDir, startAgent, type AgentProcess, useAgentWithTokens } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { executionCount } from '../http/http-support.js';

/** A request with headers fetch would not let us set (Host). */
function rawPost(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || 'null') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('review fixes: browsers and DNS rebinding', () => {
  let agent: AgentProcess;
  const body = () =>
    JSON.stringify({ wpk_content: pkg(`csrf-${randomBytes(4).toString('hex')}`, [shellStep('a', ['true'])]) });
  before(async () => (agent = await startAgent()));
  after(async () => {
    await agent?.stop();
    agent?.cleanup();
  });

  it('refuses a cross-site browser request (Origin of another site, or Sec-Fetch-Site) and creates nothing', async () => {
    const before = await executionCount(agent);
    const cases: Array<Record<string, string>> = [
      { Origin: 'https://evil.example' },
      { Origin: 'null' },
      { 'Sec-Fetch-Site': 'cross-site' },
    ];
    for (const headers of cases) {
      const r = await rawPost(agent.port, '/execute', headers, body());
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(r.body.error_type, 'forbidden');
    }
    assert.equal(await executionCount(agent), before);
  });

  it('without tokens answers only to loopback Host names, so a rebound DNS name gets 403', async () => {
    const rebound = await rawPost(agent.port, '/execute', { Host: `attacker.example:${agent.port}` }, body());
    assert.equal(rebound.status, 403);
    assert.match(rebound.body.message, /not a loopback name/);
    assert.equal((await rawPost(agent.port, '/execute', { Host: `localhost:${agent.port}` }, body())).status, 202);
    assert.equal(
      (await rawPost(agent.port, '/execute', { Origin: `http://127.0.0.1:${agent.port}` }, body())).status,
      202,
      'its own origin is fine',
    );
  });
});

describe('review fixes: auth edges', () => {
  const { agent, token } = useAgentWithTokens({ admin: ['admin'] });
  const asAdmin = () => ({ authorization: `Bearer ${token('admin')}` });

  it('answers OPTIONS and unknown methods on real routes with 401 without a token (no route probing)', async () => {
    assert.equal((await agent.request('OPTIONS', '/audit')).status, 401);
    assert.equal((await agent.request('PROPFIND', '/audit')).status, 401);
    assert.equal((await agent.request('OPTIONS', '/audit', undefined, asAdmin())).status, 200);
  });

  it('answers a null adapter config in /init with 400 naming it, not 500', async () => {
    const r = await agent.request('POST', '/init', { adapters: { k8s: null } }, asAdmin());
    assert.equal(r.status, 400);
    assert.deepEqual(
      r.body.details.errors.map((e: any) => e.path),
      ['$.adapters.k8s'],
    );
  });
});

describe('review fixes: signatures', () => {
  let dir: string;
  let dataDir: string;
  const hmacKey = Buffer.from(randomBytes(32).toString('hex'));
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-review-sig-'));
    dataDir = freshDataDir();
    writeFileSync(join(dir, 'hmac.key'), hmacKey);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('does not run by workflow_id a package registered before signing was turned on, until it is sent again signed', async () => {
    const p = pkg('host-report', [shellStep('pwn', ['echo', 'replaced'])]); // the bundled host-report-1.0.0's id
    const unsigned = await startAgent({ dataDir });
    assert.equal((await unsigned.request('POST', '/execute', { wpk_content: p })).status, 202);
    await unsigned.stop();
    const signed = await startAgent({ dataDir, env: { WPK_HMAC_KEY_FILE: join(dir, 'hmac.key') } });
    try {
      const byId = await signed.request('POST', '/execute', { workflow_id: 'host-report-1.0.0' });
      assert.equal(byId.status, 403, byId.text);
      assert.match(byId.body.message, /registered without a signature/);
      const again = await signed.request(
        'POST',
        '/execute',
        { wpk_content: p },
        { 'X-WPK-Signature': signPackage(p, { hmacKey }) },
      );
      assert.equal(again.status, 202);
      assert.equal((await signed.request('POST', '/execute', { workflow_id: 'host-report-1.0.0' })).status, 202);
    } finally {
      await signed.stop();
    }
  });

  it('refuses a YAML package holding values JSON cannot represent (.inf), which would share a signature with null', async () => {
    const agent = await startAgent({ env: { WPK_HMAC_KEY_FILE: join(dir, 'hmac.key') } });
    try {
      const asJson = pkg(
        'inf',
        [{ ...shellStep('a', ['true']), when: { variable: 'params.x', operator: 'equals', value: null } }],
        { parameters: { x: { type: 'string', default: '' } } },
      );
      const header = signPackage(asJson, { hmacKey });
      const yaml = toYaml(asJson).replace('value: null', 'value: .inf');
      assert.match(yaml, /value: \.inf/);
      const r = await agent.request('POST', '/execute', { wpk_content: yaml }, { 'X-WPK-Signature': header });
      assert.equal(r.status, 403, r.text);
      assert.match(r.body.message, /Infinity, which JSON cannot represent/);
    } finally {
      await agent.stop();
      agent.cleanup();
    }
  });
});

describe('review fixes: secrets in other forms', () => {
  it('masks a secret percent-encoded as a URL component, path or query value', () => {
    const secret = 'hunter2 pass<word>&x=1';
    const r = new Redactor([secret]);
    for (const shown of [
      encodeURIComponent(secret),
      encodeURI(secret),
      new URLSearchParams({ k: secret }).toString().slice(2),
    ]) {
      assert.equal(r.text(`GET http://h/x?k=${shown} → 500`), 'GET http://h/x?k=*** → 500', shown);
    }
  });

  it('masks each line of a multi-line secret, as a log shows it a line at a time', () => {
    const key = '-----BEGIN KEY-----\nMIIEpAIBAAKCAQEAsecretline2\n-----END KEY-----';
    const r = new Redactor([key]);
    assert.equal(r.text('MIIEpAIBAAKCAQEAsecretline2'), '***');
    assert.equal(r.text(`stdout: ${key}`), 'stdout: ***');
    assert.equal(r.text('}'), '}', 'short lines are not masked alone');
  });
});
