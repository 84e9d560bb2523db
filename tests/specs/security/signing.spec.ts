import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { canonicalJson, signPackage } from '../../../services/runtime-agent/src/wpk/signature.js';
import { startAgent, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { executionCount, runAgentUntilExit, uniqueName } from '../http/http-support.js';

const SIG = 'X-WPK-Signature';

describe('canonical JSON of a package', () => {
  it('sorts keys at every level and drops whitespace, so key order and YAML vs JSON do not matter', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: 1.5 } }),
      '{"a":{"c":1.5,"d":[true,null,"x"]},"b":1}',
    );
    assert.equal(
      canonicalJson({ a: { c: 1.5, d: [true, null, 'x'] }, b: 1 }),
      canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: 1.5 } }),
    );
    assert.equal(canonicalJson({ s: 'é"\n' }), '{"s":"é\\"\\n"}');
  });
});

describe('signed packages, through the agent process', () => {
  let dir: string;
  let hmacKey: Buffer;
  let hmacAgent: AgentProcess;
  let edAgent: AgentProcess;
  let edPrivate: ReturnType<typeof generateKeyPairSync>['privateKey'];
  const fresh = () => pkg(uniqueName('signed'), [shellStep('hello', ['echo', 'hello'])]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-signing-'));
    hmacKey = Buffer.from(randomBytes(32).toString('hex'));
    writeFileSync(join(dir, 'hmac.key'), `${hmacKey.toString()}\n`); // as `echo` writes it: the newline is not part of the key
    const pair = generateKeyPairSync('ed25519');
    edPrivate = pair.privateKey;
    writeFileSync(join(dir, 'ed25519.pub'), pair.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'ed25519.key'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    [hmacAgent, edAgent] = await Promise.all([
      startAgent({ env: { WPK_HMAC_KEY_FILE: join(dir, 'hmac.key') } }),
      startAgent({ env: { WPK_ED25519_PUBLIC_KEY_FILE: join(dir, 'ed25519.pub') } }),
    ]);
  });
  after(async () => {
    for (const a of [hmacAgent, edAgent]) {
      await a?.stop();
      a?.cleanup();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an unsigned inline package with forbidden and runs nothing', async () => {
    const before = await executionCount(hmacAgent);
    const r = await hmacAgent.request('POST', '/execute', { wpk_content: fresh() });
    assert.equal(r.status, 403);
    assert.equal(r.body.error_type, 'forbidden');
    assert.match(r.body.message, /X-WPK-Signature/);
    assert.equal(await executionCount(hmacAgent), before);
  });

  it('runs a package signed with the shared HMAC key, as JSON and as YAML text', async () => {
    const p = fresh();
    const header = signPackage(p, { hmacKey });
    const asJson = await hmacAgent.request('POST', '/execute', { wpk_content: p }, { [SIG]: header });
    assert.equal(asJson.status, 202, asJson.text);
    const q = fresh();
    const asYaml = await hmacAgent.request(
      'POST',
      '/execute',
      { wpk_content: toYaml(q) },
      { [SIG]: signPackage(q, { hmacKey }) },
    );
    assert.equal(asYaml.status, 202, asYaml.text);
  });

  it('refuses a package changed after signing, a signature for another package and a garbled header', async () => {
    const before = await executionCount(hmacAgent);
    const p = fresh();
    const header = signPackage(p, { hmacKey });
    const changed = { ...p, spec: { ...p.spec, handlers: [shellStep('hello', ['rm', '-rf', '/tmp/nothing-here'])] } };
    const wrongKey = signPackage(p, { hmacKey: randomBytes(32) });
    for (const [body, h] of [
      [{ wpk_content: changed }, header],
      [{ wpk_content: p }, wrongKey],
      [{ wpk_content: p }, 'hmac-sha256=not base64!'],
      [{ wpk_content: p }, `ed25519=${header.split('=')[1]}`],
    ] as const) {
      const r = await hmacAgent.request('POST', '/execute', body, { [SIG]: h });
      assert.equal(r.status, 403, `${h}: ${r.text}`);
      assert.equal(r.body.error_type, 'forbidden');
    }
    assert.equal(await executionCount(hmacAgent), before);
  });

  it('still runs the bundled packages by workflow_id without a signature (they are the agent’s own)', async () => {
    const r = await hmacAgent.request('POST', '/execute', { workflow_id: 'host-report-1.0.0', dry_run: true });
    assert.equal(r.status, 202, r.text);
  });

  it('verifies Ed25519 signatures with the public key and refuses HMAC ones there', async () => {
    const p = fresh();
    const ok = await edAgent.request(
      'POST',
      '/execute',
      { wpk_content: p },
      { [SIG]: signPackage(p, { ed25519PrivateKey: edPrivate }) },
    );
    assert.equal(ok.status, 202, ok.text);
    const hmac = await edAgent.request('POST', '/execute', { wpk_content: p }, { [SIG]: signPackage(p, { hmacKey }) });
    assert.equal(hmac.status, 403);
    const other = generateKeyPairSync('ed25519').privateKey;
    const forged = await edAgent.request(
      'POST',
      '/execute',
      { wpk_content: p },
      { [SIG]: signPackage(p, { ed25519PrivateKey: other }) },
    );
    assert.equal(forged.status, 403);
  });

  it('gives the registry a signing command: npm run sign prints a header the agent accepts', async () => {
    const p = fresh();
    const file = join(dir, 'package.yaml');
    writeFileSync(file, toYaml(p));
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'scripts/sign-package.ts'),
        file,
        '--ed25519-private-key-file',
        join(dir, 'ed25519.key'),
      ],
      { encoding: 'utf8' },
    );
    const m = /^X-WPK-Signature: (\S+)\n$/.exec(out);
    assert.ok(m, out);
    const r = await edAgent.request('POST', '/execute', { wpk_content: p }, { [SIG]: m[1] });
    assert.equal(r.status, 202, r.text);
  });

  it('refuses to start with a key that cannot be used', async () => {
    writeFileSync(join(dir, 'short.key'), 'short');
    const exit = await runAgentUntilExit({
      PORT: '0',
      DATA_DIR: join(dir, 'data'),
      WPK_HMAC_KEY_FILE: join(dir, 'short.key'),
    });
    assert.equal(exit.code, 2);
    assert.match(exit.stderr, /WPK_HMAC_KEY_FILE: .*at least 32/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    writeFileSync(join(dir, 'rsa.pub'), rsa);
    const exit2 = await runAgentUntilExit({
      PORT: '0',
      DATA_DIR: join(dir, 'data2'),
      WPK_ED25519_PUBLIC_KEY_FILE: join(dir, 'rsa.pub'),
    });
    assert.equal(exit2.code, 2);
    assert.match(exit2.stderr, /WPK_ED25519_PUBLIC_KEY_FILE: .*rsa key; expected ed25519/);
  });
});
