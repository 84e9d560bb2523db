import assert from 'node:assert/strict';
import { useAgent, waitForStatus } from './support/agent-process.js';
import { pkg, shellStep } from './support/packages.js';

describe('agent process', () => {
  const agent = useAgent();

  it('runs a posted package to completion and reports its outputs', async () => {
    const r = await agent.request('POST', '/execute', {
      wpk_content: pkg('smoke', [shellStep('hello', ['echo', 'hi'])]),
    });
    assert.equal(r.status, 202);
    assert.equal(r.headers.get('location'), `/execute/${r.body.execution_id}`);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].outputs.stdout, 'hi\n');
  });
});
