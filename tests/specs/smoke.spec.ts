import assert from 'node:assert/strict';
import { startAgent, waitForStatus, type AgentProcess } from './support/agent-process.js';
import { pkg, shellStep } from './support/packages.js';

describe('agent process', () => {
  let agent: AgentProcess;
  before(async () => {
    agent = await startAgent();
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it('runs a posted package to completion and reports its outputs', async () => {
    const r = await agent.request('POST', '/execute', { wpk_content: pkg('smoke', [shellStep('hello', ['echo', 'hi'])]) });
    assert.equal(r.status, 202);
    assert.equal(r.headers.get('location'), `/execute/${r.body.execution_id}`);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].outputs.stdout, 'hi\n');
  });
});
