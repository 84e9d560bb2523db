/**
 * The container-control file of the FlowRunner control API (FLOWRUNNER_CONTROL_CONFIG): the seed's shape
 * accepted, malformed keys refused at start in one line, the tc commands planned, and pre_start/post_stop
 * run as argv around the flow, through FlowControl in process and through the real agent's /api/*.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerControl } from '../../../adapters/flowrunner/container/container-control.js';
import {
  ControlConfigProblem,
  NO_CONTAINER_CONTROL,
  parseContainerControl,
  type ContainerControlSettings,
} from '../../../adapters/flowrunner/container/settings.js';
import { burstBytes, shapingCommands } from '../../../adapters/flowrunner/container/traffic.js';
import { FlowControl, parseStartRequest } from '../../../adapters/flowrunner/control.js';
import { freshDataDir, spawnAgent, startAgent, type AgentProcess } from '../support/agent-process.js';
import { waitFor } from '../support/wait.js';
import { append, FAIL } from './lifecycle-argv.js';

const SEED_CONFIG = `
adapter:
  class: flowrunner_adapter.FlowRunnerAdapter
  primary_payload_key: config
  run_as_user: null
process_management:
  enabled: false
metrics:
  network_monitoring:
    enabled: true
    interface: "eth0"
traffic_control:
  enabled: true
  interface: "eth0"
  bandwidth_mbps_key: "bandwidth_limit_mbps"
  default_bandwidth_mbps: 100
  latency_ms_key: "latency_ms"
  default_latency_ms: 0
privileged_commands:
  pre_start:
    - ["sysctl", "-w", "net.core.somaxconn=8192"]
  post_stop:
    - ["sysctl", "-w", "net.core.somaxconn=128"]
`;

describe('the container-control file', () => {
  it("accepts the seed's configuration whole, and lists adapter and process_management as ignored", () => {
    const { settings, ignored } = parseContainerControl(SEED_CONFIG);
    assert.deepEqual(ignored, ['adapter', 'process_management']);
    assert.deepEqual(settings.networkMonitoring, { enabled: true, interface: 'eth0' });
    assert.deepEqual(settings.trafficControl, {
      enabled: true,
      interface: 'eth0',
      bandwidthKey: 'bandwidth_limit_mbps',
      defaultBandwidthMbps: 100,
      latencyKey: 'latency_ms',
      defaultLatencyMs: 0,
    });
    assert.deepEqual(settings.preStart, [['sysctl', '-w', 'net.core.somaxconn=8192']]);
    assert.deepEqual(settings.postStop, [['sysctl', '-w', 'net.core.somaxconn=128']]);
  });

  it('an empty file means no traffic control and no commands', () => {
    assert.deepEqual(parseContainerControl('').settings, NO_CONTAINER_CONTROL);
    assert.deepEqual(parseContainerControl('').ignored, []);
  });

  const refused: Array<[string, string, RegExp]> = [
    [
      'a shell string as a command',
      'privileged_commands:\n  pre_start: ["sysctl -w x=1"]',
      /^privileged_commands\.pre_start\[0\]: .*never a shell string/,
    ],
    ['an empty argv', 'privileged_commands:\n  post_stop: [[]]', /^privileged_commands\.post_stop\[0\]: /],
    [
      'commands that are not a list',
      'privileged_commands:\n  pre_start: "ls"',
      /^privileged_commands\.pre_start: expected a list/,
    ],
    ['enabled as text', 'traffic_control:\n  enabled: "yes"', /^traffic_control\.enabled: expected true or false/],
    [
      'a negative bandwidth',
      'traffic_control:\n  default_bandwidth_mbps: -1',
      /^traffic_control\.default_bandwidth_mbps: expected a number/,
    ],
    [
      'an interface with a slash',
      'traffic_control:\n  interface: "../eth0"',
      /^traffic_control\.interface: expected a network interface name/,
    ],
    [
      'a key with a space',
      'traffic_control:\n  latency_ms_key: "latency ms"',
      /^traffic_control\.latency_ms_key: expected a field name/,
    ],
    [
      'the same key twice',
      'traffic_control:\n  bandwidth_mbps_key: x\n  latency_ms_key: x',
      /^traffic_control\.latency_ms_key: must differ/,
    ],
    ['an unknown section', 'traffic_shaping: {}', /^traffic_shaping: unknown section/],
    [
      'an unknown key',
      'metrics:\n  network_monitoring:\n    iface: eth0',
      /^metrics\.network_monitoring\.iface: unknown key/,
    ],
    ['a list as the file', '- a', /^\(file\): expected a mapping/],
    ['YAML that does not parse', 'a: [', /^\(file\): not valid YAML/],
  ];
  for (const [what, text, message] of refused) {
    it(`refuses ${what}, naming the key`, () => {
      assert.throws(
        () => parseContainerControl(text),
        (err: unknown) => err instanceof ControlConfigProblem && message.test(err.message),
      );
    });
  }
});

describe('the tc commands', () => {
  it('a bandwidth limit alone is a tbf at the root, in kbit, with a 10 ms bucket', () => {
    assert.deepEqual(shapingCommands('veth0', { bandwidth_mbps: 20, latency_ms: 0 }), [
      [
        'tc',
        'qdisc',
        'replace',
        'dev',
        'veth0',
        'root',
        'handle',
        'f10:',
        'tbf',
        'rate',
        '20000kbit',
        'burst',
        String(burstBytes(20)),
        'latency',
        '50ms',
      ],
    ]);
    assert.equal(burstBytes(20), 25_000);
    assert.equal(burstBytes(1), 16 * 1024, 'at least a few full-size packets');
  });

  it('latency is a netem at the root, with the tbf under it when a limit is asked for too', () => {
    assert.deepEqual(shapingCommands('eth0', { bandwidth_mbps: 0, latency_ms: 40 }), [
      ['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'handle', 'f10:', 'netem', 'delay', '40ms', 'limit', '10000'],
    ]);
    const both = shapingCommands('eth0', { bandwidth_mbps: 5, latency_ms: 40 });
    assert.equal(both.length, 2);
    assert.deepEqual(both[0]!.slice(8, 11), ['netem', 'delay', '40ms']);
    assert.deepEqual(both[1]!.slice(5, 10), ['parent', 'f10:1', 'handle', 'f11:', 'tbf']);
  });

  it('nothing to apply is no command', () => {
    assert.deepEqual(shapingCommands('eth0', { bandwidth_mbps: 0, latency_ms: 0 }), []);
  });
});

describe('shaping read from the start and update payloads', () => {
  const control = new ContainerControl(parseContainerControl(SEED_CONFIG).settings, () => {});

  it('reads the configured keys inside config, next to it, and falls back to the defaults at start', () => {
    assert.deepEqual(control.readShaping({ config: { bandwidth_limit_mbps: 10, latency_ms: 5 } }, 'start'), {
      ok: true,
      shaping: { bandwidth_mbps: 10, latency_ms: 5 },
    });
    assert.deepEqual(control.readShaping({ config: {}, latency_ms: 7 }, 'start'), {
      ok: true,
      shaping: { bandwidth_mbps: 100, latency_ms: 7 },
    });
  });

  it('an update without the keys changes nothing', () => {
    assert.deepEqual(control.readShaping({ sim_users: 3 }, 'update'), { ok: true });
  });

  it('refuses a value that is not a number in range, with where it was', () => {
    const r = control.readShaping({ config: { bandwidth_limit_mbps: '10' }, latency_ms: -1 }, 'start');
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.problems.map((p) => p.loc), [
      ['body', 'config', 'bandwidth_limit_mbps'],
      ['body', 'latency_ms'],
    ]);
  });

  it('with traffic control off, the keys are not read', () => {
    const off = new ContainerControl(NO_CONTAINER_CONTROL, () => {});
    assert.deepEqual(off.readShaping({ config: { bandwidth_limit_mbps: 'x' } }, 'start'), { ok: true });
  });
});

// --- pre_start and post_stop -----------------------------------------------------------------------

async function target(): Promise<{ url: string; close(): void }> {
  const server = http.createServer((_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => server.close(),
  };
}

describe('pre_start and post_stop around the flow of FlowControl', function () {
  this.timeout(30_000);
  let dir: string;
  let marks: string;
  let app: { url: string; close(): void };
  const lines: string[] = [];
  const log = (_level: string, message: string) => lines.push(message);

  before(async () => {
    app = await target();
  });
  after(() => app.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fr-container-'));
    marks = join(dir, 'marks');
    lines.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const settings = (over: Partial<ContainerControlSettings>): ContainerControlSettings => ({
    ...NO_CONTAINER_CONTROL,
    ...over,
  });
  const request = () => {
    const r = parseStartRequest({
      config: { flow_target_url: app.url, sim_users: 1, min_sleep_ms: 100, max_sleep_ms: 100 },
      flowmap: { steps: [{ id: 'get', type: 'request', url: '/' }] },
    });
    assert.ok(r.ok);
    return r;
  };
  const marked = () => (existsSync(marks) ? readFileSync(marks, 'utf8').trim().split('\n') : []);

  it('runs pre_start before the flow starts and post_stop once it stopped, in order, with output in the log', async () => {
    const container = new ContainerControl(
      settings({ preStart: [append(marks, 'pre1'), append(marks, 'pre2')], postStop: [append(marks, 'post')] }),
      log,
    );
    const flows = new FlowControl({ log, container });
    const r = request();
    await flows.start(r.config, r.flowmap);
    assert.deepEqual(marked(), ['pre1', 'pre2']);
    assert.equal(flows.appStatus, 'running');
    await flows.stop();
    assert.deepEqual(marked(), ['pre1', 'pre2', 'post']);
    await flows.stop();
    assert.deepEqual(marked(), ['pre1', 'pre2', 'post'], 'a second stop runs nothing');
  });

  it('a replacing start runs post_stop of the old flow, then pre_start of the new; shutdown runs post_stop', async () => {
    const container = new ContainerControl(
      settings({ preStart: [append(marks, 'pre')], postStop: [append(marks, 'post')] }),
      log,
    );
    const flows = new FlowControl({ log, container });
    const r = request();
    await flows.start(r.config, r.flowmap);
    await flows.start(r.config, r.flowmap);
    assert.deepEqual(marked(), ['pre', 'post', 'pre']);
    await flows.shutdown();
    assert.deepEqual(marked(), ['pre', 'post', 'pre', 'post']);
  });

  it('a failing pre_start fails the start with its output, starts no flow and runs no post_stop', async () => {
    const container = new ContainerControl(settings({ preStart: [FAIL], postStop: [append(marks, 'post')] }), log);
    const flows = new FlowControl({ log, container });
    const r = request();
    await assert.rejects(flows.start(r.config, r.flowmap), (err: Error) => {
      assert.match(err.message, /^pre_start command \[.*\] exited with code 3: /);
      assert.match(err.message, /checking limits/);
      assert.match(err.message, /somaxconn: permission denied/);
      return true;
    });
    assert.equal(flows.appStatus, 'error');
    assert.equal(flows.snapshot(), undefined, 'no flow ran');
    assert.deepEqual(marked(), []);
    assert.ok(
      lines.some((l) => l === 'pre_start stderr: somaxconn: permission denied'),
      lines.join('\n'),
    );
  });

  it('a pre_start that outlives its timeout is stopped with its process group, and the start fails', async () => {
    const child = join(dir, 'child.pid');
    // The command leaves a grandchild behind: the process group is stopped whole.
    const hang = [
      process.execPath,
      '-e',
      'const c = require("child_process").spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" }); require("fs").writeFileSync(process.argv[1], String(c.pid)); setInterval(() => {}, 1000)',
      child,
    ];
    const container = new ContainerControl(settings({ preStart: [hang], commandTimeoutSeconds: 1 }), log);
    const flows = new FlowControl({ log, container });
    const r = request();
    await assert.rejects(flows.start(r.config, r.flowmap), /timed out after 1s/);
    const pid = Number(readFileSync(child, 'utf8'));
    await waitFor(() => !alive(pid), `the grandchild ${pid} to be gone`, 5_000);
  });

  it('a program that does not exist fails the start, saying so', async () => {
    const container = new ContainerControl(settings({ preStart: [['no-such-program-xyz', '1']] }), log);
    const flows = new FlowControl({ log, container });
    const r = request();
    await assert.rejects(flows.start(r.config, r.flowmap), /no-such-program-xyz.*not found in PATH/);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// --- through the real agent ------------------------------------------------------------------------

describe('the container-control file in the real agent', function () {
  this.timeout(45_000);
  let dir: string;
  let app: { url: string; close(): void };
  let agent: AgentProcess | undefined;

  before(async () => {
    app = await target();
  });
  after(() => app.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fr-container-agent-'));
  });
  afterEach(async () => {
    await agent?.stop();
    agent?.cleanup();
    agent = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function refusedStart(yaml: string): Promise<{ code: number | null; stderr: string }> {
    const file = join(dir, 'control.yaml');
    writeFileSync(file, yaml);
    const data = freshDataDir();
    const proc = spawnAgent([], { PATH: process.env.PATH, PORT: '0', DATA_DIR: data, FLOWRUNNER_CONTROL_CONFIG: file });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const [code] = (await once(proc, 'exit')) as [number | null];
    rmSync(data, { recursive: true, force: true });
    return { code, stderr };
  }

  it('a malformed key stops the start with one line naming the setting, the file and the key (exit 2)', async () => {
    const { code, stderr } = await refusedStart('traffic_control:\n  enabled: true\n  default_latency_ms: "fast"\n');
    assert.equal(code, 2);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(
      lines[0]!,
      /^runtime-agent: invalid configuration: FLOWRUNNER_CONTROL_CONFIG: .*control\.yaml: traffic_control\.default_latency_ms: expected a number/,
    );
  });

  it('a file that is not there stops the start in one line', async () => {
    const data = freshDataDir();
    const proc = spawnAgent([], {
      PATH: process.env.PATH,
      PORT: '0',
      DATA_DIR: data,
      FLOWRUNNER_CONTROL_CONFIG: join(dir, 'nope.yaml'),
    });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const [code] = (await once(proc, 'exit')) as [number | null];
    rmSync(data, { recursive: true, force: true });
    assert.equal(code, 2);
    assert.match(
      stderr.trim(),
      /^runtime-agent: invalid configuration: FLOWRUNNER_CONTROL_CONFIG: .*nope\.yaml does not exist/,
    );
  });

  it("the seed's file starts the agent with one warning for adapter and process_management", async () => {
    const file = join(dir, 'control.yaml');
    // The seed's file without its traffic control and commands (they need eth0 and root).
    writeFileSync(file, SEED_CONFIG.replace(/traffic_control:[\s\S]*$/, ''));
    agent = await startAgent({ env: { FLOWRUNNER_CONTROL_CONFIG: file } });
    const warnings = agent.logLines().filter((l) => /ignored/.test(String(l.msg)));
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!.msg), /adapter and process_management are ignored/);
    const metrics = await agent.request('GET', '/api/metrics');
    assert.deepEqual(metrics.body.traffic_control, { enabled: false });
    assert.equal(typeof metrics.body.network.bytes_recv, 'number');
  });

  it('network monitoring off answers network null; on one interface, its counters', async () => {
    const file = join(dir, 'control.yaml');
    writeFileSync(file, 'metrics:\n  network_monitoring:\n    enabled: false\n');
    agent = await startAgent({ env: { FLOWRUNNER_CONTROL_CONFIG: file } });
    assert.equal((await agent.request('GET', '/api/metrics')).body.network, null);
    await agent.stop();
    agent.cleanup();
    writeFileSync(file, 'metrics:\n  network_monitoring:\n    interface: lo\n');
    agent = await startAgent({ env: { FLOWRUNNER_CONTROL_CONFIG: file } });
    const before = (await agent.request('GET', '/api/metrics')).body.network.bytes_recv;
    const after = (await agent.request('GET', '/api/metrics')).body.network.bytes_recv;
    assert.ok(before > 0 && after > before, `lo counts the test's own requests to the agent: ${before} -> ${after}`);
  });

  it('/api/start answers 500 with the output of a failing pre_start; post_stop runs on /api/stop', async () => {
    const file = join(dir, 'control.yaml');
    const marks = join(dir, 'marks');
    const flowStart = {
      config: { flow_target_url: app.url, sim_users: 1 },
      flowmap: { steps: [{ id: 'get', type: 'request', url: '/' }] },
    };
    writeFileSync(file, JSON.stringify({ privileged_commands: { pre_start: [FAIL] } }));
    agent = await startAgent({ env: { FLOWRUNNER_CONTROL_CONFIG: file } });
    const failed = await agent.request('POST', '/api/start', flowStart);
    assert.equal(failed.status, 500);
    assert.match(failed.body.detail, /^pre_start command .* exited with code 3: .*somaxconn: permission denied/);
    assert.equal((await agent.request('GET', '/api/health')).body.app_status, 'error');
    await agent.stop();
    agent.cleanup();

    writeFileSync(
      file,
      JSON.stringify({
        privileged_commands: { pre_start: [append(marks, 'pre')], post_stop: [append(marks, 'post')] },
      }),
    );
    agent = await startAgent({ env: { FLOWRUNNER_CONTROL_CONFIG: file } });
    assert.equal((await agent.request('POST', '/api/start', flowStart)).status, 200);
    assert.deepEqual(readFileSync(marks, 'utf8').split('\n'), ['pre', '']);
    assert.equal((await agent.request('POST', '/api/stop')).status, 200);
    assert.deepEqual(readFileSync(marks, 'utf8').split('\n'), ['pre', 'post', '']);
  });
});
