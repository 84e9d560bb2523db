import assert from 'node:assert/strict';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { ProcessJanitor } from './processes.js';

const TERMINAL = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];
const EXECUTIONS = 50;
const MAX_CONCURRENT = 4;

describe('durability: accepted executions are never lost', () => {
  const janitor = new ProcessJanitor();
  afterEach(async () => {
    await janitor.cleanup();
  });

  it(`keeps all ${EXECUTIONS} executions accepted right before a SIGKILL and finishes them after the restart`, async () => {
    const env = { MAX_CONCURRENT_EXECUTIONS: String(MAX_CONCURRENT) };
    const first = await janitor.start({ env });
    const posts = await Promise.all(
      Array.from({ length: EXECUTIONS }, (_, i) =>
        first.request('POST', '/execute', {
          wpk_content: pkg('not-lost', [shellStep('work', ['sleep', '0.2']), shellStep('done', ['echo', `run ${i}`])]),
        }),
      ),
    );
    assert.equal(await first.stop('SIGKILL'), null);
    assert.deepEqual(
      posts.map((p) => p.status),
      Array(EXECUTIONS).fill(202),
    );
    const ids: string[] = posts.map((p) => p.body.execution_id);
    assert.equal(new Set(ids).size, EXECUTIONS);

    const second = await janitor.start({ dataDir: first.dataDir, env });
    for (const id of ids)
      assert.equal((await second.request('GET', `/execute/${id}`)).status, 200, `execution ${id} was lost`);
    const listed = await second.request('GET', '/executions?limit=100');
    assert.deepEqual(listed.body.executions.map((e: any) => e.execution_id).sort(), [...ids].sort());

    const records = await waitFor(
      async () => {
        const all = await Promise.all(ids.map(async (id) => (await second.request('GET', `/execute/${id}`)).body));
        return all.every((r) => TERMINAL.includes(r.status)) ? all : undefined;
      },
      'every accepted execution to finish',
      30_000,
      100,
    );
    const interrupted = records.filter((r) => r.status !== 'completed');
    for (const r of interrupted) {
      assert.equal(r.status, 'failed', `${r.execution_id} ended ${r.status}`);
      assert.equal(r.error.type, 'interrupted');
      assert.ok(r.steps.some((s: any) => s.status === 'abandoned'));
    }
    assert.ok(
      interrupted.length <= MAX_CONCURRENT,
      `${interrupted.length} executions were interrupted, but only ${MAX_CONCURRENT} can have been running`,
    );
    for (const r of records.filter((x) => x.status === 'completed')) {
      assert.equal(r.steps[1].outputs.stdout, `run ${ids.indexOf(r.execution_id)}\n`);
    }
  });
});
