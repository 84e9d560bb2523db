import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testAdapter } from '../support/test-adapter.js';
import { useEngine, step, wpk } from './harness.js';

/** Forms a secret could take in the file: as is, JSON-escaped, and as UTF-16 (SQLite never uses it here, but cheap to rule out). */
function forms(secret: string): Buffer[] {
  const escaped = JSON.stringify(secret).slice(1, -1);
  return [Buffer.from(secret), Buffer.from(escaped), Buffer.from(secret, 'utf16le')];
}

/** Every file of the store (main database, -wal, -shm), as bytes. */
function storeFiles(dir: string): Array<{ name: string; bytes: Buffer }> {
  return readdirSync(dir).map((name) => ({ name, bytes: readFileSync(join(dir, name)) }));
}

const params = {
  token: { type: 'string', secret: true },
  pin: { type: 'string', secret: true },
  user: { type: 'string' },
} as const;

describe('engine: secret parameters', () => {
  const h = useEngine();

  it('hands the real value to actions but never stores it: not in parameters, logs, errors, outputs or the SQLite file', async () => {
    // A quote and a backslash: JSON escapes them, so masking must not only look for the raw form.
    const token = 'tok-"Zq\\9f1c-PLAINTEXT';
    const pin = '90210';
    const given = { token, pin, user: 'alice' };
    const failing = await h.run({
      wpk: wpk(
        [
          step('login', 'leak', {
            token: '${{ params.token }}',
            note: 'Bearer ${{ params.token }} for ${{ params.user }}',
          }),
          step('reuse', 'ok', { value: '${{ steps.login.outputs.echo }}' }),
          step('pin', 'leak', { token: '${{ params.pin }}', numeric: true }),
          step('deny', 'leak', { token: '${{ params.token }}', fail: true }),
        ],
        {
          parameters: params as any,
          rollback: {
            enabled: true,
            handlers: [step('undo', 'record', { token: '${{ params.token }}', why: '${{ error.message }}' })],
          },
        },
      ),
      params: given,
    });
    const dry = await h.run({
      wpk: wpk([step('write', 'record', { auth: 'token ${{ params.token }}' })], { parameters: params as any }),
      params: given,
      dryRun: true,
    });

    // The actions got the real values, also through outputs and rollback templates.
    const leaks = h.callsOf('leak');
    assert.equal(leaks[0].input.token, token);
    assert.equal(leaks[0].input.note, `Bearer ${token} for alice`);
    assert.equal(leaks[1].input.token, pin);
    assert.equal(h.callsOf('ok')[0].input.value, token, 'a later step reads the real output');
    const [undo] = h.callsOf('record');
    assert.equal(undo.input.token, token);

    assert.equal(failing.status, 'rolled_back');
    assert.deepEqual(failing.parameters, { token: '***', pin: '***', user: 'alice' });
    assert.deepEqual(failing.steps[0].input, { token: '***', note: 'Bearer *** for alice' });
    assert.deepEqual(failing.steps[0].outputs, { echo: '***', nested: { note: 'Bearer *** for alice' } });
    assert.deepEqual(
      failing.steps[2].outputs,
      { echo: '***', nested: {}, port: '***', ts: '***' },
      'numbers that show the secret are masked whole',
    );
    assert.deepEqual(failing.steps[1].outputs, { value: '***' });
    assert.deepEqual(failing.error, { type: 'adapter_error', message: 'login failed for token ***', step: 'deny' });
    assert.deepEqual(failing.steps[3].error, {
      type: 'adapter_error',
      message: 'login failed for token ***',
      details: { token: '***' },
    });
    assert.deepEqual(failing.rollback.steps[0].input, { token: '***', why: 'login failed for token ***' });

    const logs = [...h.logs(failing.execution_id), ...h.logs(dry.execution_id)];
    assert.ok(
      logs.some((l) => l.endsWith('using token ***')),
      'the action logged, masked',
    );
    assert.ok(
      logs.some((l) => l.endsWith('token=***')),
      'an output line, masked',
    );
    assert.ok(
      logs.some((l) => l.includes('dry run: would run fake.record')),
      'the dry-run line is there',
    );
    for (const l of logs) {
      assert.equal(l.includes(token), false, `log line leaks the token: ${l}`);
      assert.equal(l.includes(JSON.stringify(token).slice(1, -1)), false, `log line leaks the escaped token: ${l}`);
      assert.equal(l.includes(pin), false, `log line leaks the pin: ${l}`);
    }
    assert.deepEqual(dry.parameters, { token: '***', pin: '***', user: 'alice' });
    assert.deepEqual(dry.steps[0].input, { auth: 'token ***' });

    await h.close(false); // checkpoints the WAL into the main file
    const files = storeFiles(h.dir);
    assert.ok(files.some((f) => f.name.endsWith('.sqlite') && f.bytes.length > 0));
    assert.ok(
      files.some((f) => f.bytes.includes('alice')),
      'the file holds the records (a sanity check of the scan)',
    );
    for (const f of files) {
      for (const form of [...forms(token), ...forms(pin)])
        assert.equal(
          f.bytes.indexOf(form),
          -1,
          `${f.name} holds a secret in the form ${JSON.stringify(form.toString())}`,
        );
    }
  });

  it('masks the secret in a live file too (the WAL, before any checkpoint)', async () => {
    const token = 'live-wal-secret-7f3a';
    await h.run({
      wpk: wpk(
        [
          step('login', 'leak', { token: '${{ params.token }}' }),
          step('deny', 'leak', { token: '${{ params.token }}', fail: true }),
        ],
        { parameters: params as any },
      ),
      params: { token },
    });
    const files = storeFiles(h.dir);
    assert.ok(
      files.some((f) => f.name.endsWith('-wal') && f.bytes.length > 0),
      'the WAL has content',
    );
    for (const f of files) assert.equal(f.bytes.indexOf(token), -1, `${f.name} holds the secret`);
  });

  it("journals a step's progress as step.progress, with the execution's secrets masked", async () => {
    const token = 'progress-secret-51c9';
    const { execution_id: id } = await h.run({
      wpk: wpk([step('login', 'leak', { token: '${{ params.token }}', progress: true })], {
        parameters: params as any,
      }),
      params: { token },
    });
    const events = h.store.journal.page({ since: 0, executionId: id, limit: 100 });
    const progress = events.filter((e) => e.type === 'step.progress');
    assert.equal(progress.length, 1);
    assert.equal(progress[0].step, 'login');
    assert.deepEqual(progress[0].data, { phase: 'main', attempt: 1, seen: '***', done: 1 });
    // Between the step's start and its end, in journal order.
    const types = events.map((e) => e.type);
    assert.ok(types.indexOf('step.started') < types.indexOf('step.progress'));
    assert.ok(types.indexOf('step.progress') < types.indexOf('step.finished'));
  });

  describe('credentials that actions declare in their input (secretsIn)', () => {
    const keyed = testAdapter('keyed', 'test double', {
      echo: { description: 'returns its input', run: async (_ctx, input) => ({ echo: input }) },
      use: {
        description: 'declares its key a credential',
        secretsIn: (input: any) => [input.key],
        run: async () => ({}),
      },
      broken: {
        description: 'its credential scan throws',
        secretsIn: () => {
          throw new TypeError('scan exploded');
        },
        run: async () => ({}),
      },
    });

    it("masks a step's credentials from when that step starts, never in what earlier steps recorded, nor for a step that never ran", async () => {
      await h.restart({}, [keyed]);
      const value = 'build-20240501-prod';
      const rec = await h.run({
        wpk: wpk(
          [
            { name: 'first', adapter: 'keyed', action: 'echo', with: { tag: value } },
            {
              name: 'skipped',
              adapter: 'keyed',
              action: 'use',
              with: { key: value },
              when: { variable: 'params.go', operator: 'is_true' },
            },
          ],
          { parameters: { go: { type: 'boolean', default: false } } },
        ),
      });
      assert.equal(rec.status, 'completed');
      assert.equal(rec.steps[1].status, 'skipped');
      assert.deepEqual(rec.steps[0].input, { tag: value }, 'a credential of a step that never ran masks nothing');
      assert.deepEqual(rec.steps[0].outputs, { echo: { tag: value } });

      const ran = await h.run({
        wpk: wpk([
          { name: 'uses', adapter: 'keyed', action: 'use', with: { key: value } },
          { name: 'after', adapter: 'keyed', action: 'echo', with: { tag: value } },
        ]),
      });
      assert.deepEqual(ran.steps[0].input, { key: '***' }, 'once its step starts, the credential is masked');
      assert.deepEqual(ran.steps[1].outputs, { echo: { tag: '***' } }, 'and stays masked for every later step');
    });

    it('fails the step whose credential scan throws, and the execution ends instead of staying running', async () => {
      await h.restart({}, [keyed]);
      const rec = await h.run({
        wpk: wpk([
          { name: 'ok', adapter: 'keyed', action: 'echo', with: {} },
          { name: 'scan', adapter: 'keyed', action: 'broken', with: { k: 1 } },
        ]),
      });
      assert.equal(rec.status, 'failed');
      assert.equal(rec.steps[0].status, 'succeeded', 'the steps before it ran');
      assert.equal(rec.steps[1].status, 'failed');
      assert.match((rec.steps[1].error as any).message, /scan exploded/);
    });
  });
});
