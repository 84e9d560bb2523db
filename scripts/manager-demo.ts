/**
 * npm run manager:demo: pull mode end to end on this machine. Starts the test Manager (tests/manager) on
 * 127.0.0.1, gives it four tasks (a bundled workflow, and with iperf3 installed the seed's three iperf tasks),
 * starts an agent in pull mode against it with a fresh data directory, prints every call the Manager sees,
 * then stops the agent (SIGTERM: it deregisters). Bounded: 90 s.
 */
import { randomUUID } from 'node:crypto';
import { freePort, startAgent } from '../tests/specs/support/agent-process.js';
import { haveIperf3 } from '../tests/specs/support/processes.js';
import { type Call, type ManagerTask, TestManager } from '../tests/manager/manager.js';

const DEADLINE_MS = 90_000;
const print = (line: string) => process.stdout.write(`${line}\n`);

function describe(call: Call): string | undefined {
  const body = call.body as Record<string, unknown> | undefined;
  switch (call.endpoint) {
    case 'register':
      return `register   ${call.headers['x-agent-name']} → ${call.status} (task types: ${(body?.capabilities as { task_types: string[] })?.task_types.join(', ')})`;
    case 'claim':
      return call.status === 204 ? undefined : `claim      → ${call.status}`;
    case 'heartbeat': {
      const running = (body?.running as unknown[] | undefined)?.length ?? 0;
      return running ? `heartbeat  ${running} task(s) running, ${body?.free_slots} free slot(s)` : undefined;
    }
    case 'report': {
      const r = body as { status: string; result: unknown; error: { message: string } | null };
      // A workflow's result is its execution record: its steps say enough here.
      const record = r.result as { steps?: Array<{ name: string; status: string }> } | null;
      const result = record?.steps
        ? `steps: ${record.steps.map((x) => `${x.name} ${x.status}`).join(', ')}`
        : JSON.stringify(r.result)?.slice(0, 160);
      return `report     ${call.path.split('/').at(-2)}: ${r.status} ${r.error ? `(${r.error.message})` : result}`;
    }
    case 'deregister':
      return `deregister ${call.headers['x-agent-name']} → ${call.status}`;
    default:
      return `${call.method} ${call.path} → ${call.status}`;
  }
}

const manager = await new TestManager({
  agentKey: 'demo-key',
  heartbeatIntervalS: 1,
  claimIntervalS: 0.5,
  onCall: (call) => {
    const line = describe(call);
    if (line) print(`manager: ${line}`);
  },
}).start();
print(`manager: listening on ${manager.url}`);

const tasks: ManagerTask[] = [
  { task_id: randomUUID(), type: 'workflow', payload: { workflow_id: 'host-report-1.0.0', parameters: { path: '/' } } },
];
if (haveIperf3()) {
  const port = await freePort();
  tasks.push(
    { task_id: randomUUID(), type: 'iperf_server_start', payload: { port, udp: false } },
    { task_id: randomUUID(), type: 'iperf_client_run', payload: { server_ip: '127.0.0.1', port, time: 2 } },
    { task_id: randomUUID(), type: 'kill_all', payload: {} },
  );
} else print('manager: iperf3 is not installed (apt-get install iperf3): only the workflow task runs');

// One task at a time, in order: the client needs the server, and kill_all comes last.
const agent = await startAgent({
  env: { MANAGER_URL: manager.url, AGENT_NAME: 'demo-agent', AGENT_KEY: 'demo-key', MAX_CONCURRENT_EXECUTIONS: '1' },
});
print(`agent:   pulling from ${manager.url}; its own API is on ${agent.url}`);
const started = Date.now();
try {
  for (const task of tasks) {
    print(`manager: queued ${task.task_id} (${task.type})`);
    manager.addTasks(task);
    while (manager.distinctReports(task.task_id).length === 0) {
      if (Date.now() - started > DEADLINE_MS) throw new Error(`no report within ${DEADLINE_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  print('agent:   every task reported; stopping the agent (SIGTERM)');
} finally {
  await agent.stop('SIGTERM');
  agent.cleanup();
  await manager.close();
}
