/**
 * deploy/prometheus and deploy/grafana, proven with real parts: Debian's `promtool` checks the alert rules
 * and runs their unit tests, and a real Prometheus server on loopback scrapes a real agent while the bundled
 * workflows (and a FlowRunner flow) run; then every query of the dashboard and every series the rules read
 * is asked of Prometheus's HTTP API. A query that returns nothing, or a label no scraped series has, fails.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { freePort, startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';

const RULES = join(REPO_ROOT, 'deploy/prometheus/rules.yaml');
const RULE_TESTS = join(REPO_ROOT, 'deploy/prometheus/rules.test.yaml');
const DASHBOARD = join(REPO_ROOT, 'deploy/grafana/runtime-agent.json');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rulesDoc = parse(readFileSync(RULES, 'utf8'));
const rules: Rule[] = rulesDoc.spec.groups.flatMap((g: { rules: Rule[] }) => g.rules);
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
const queryPanels = (dashboard.panels as any[]).filter((p) => p.type !== 'row');

/** The alerts the operations kit promises, one per condition. */
const ALERTS = [
  'RuntimeAgentRollbackFailed',
  'RuntimeAgentFailureRatioHigh',
  'RuntimeAgentQueueSaturated',
  'RuntimeAgentExecutionOverdue',
  'RuntimeAgentAdapterNotReady',
  'RuntimeAgentDown',
  'RuntimeAgentFlowRunnerErrorRateHigh',
];

/** GitHub's anchor of a Markdown heading. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');

/** The rules file promtool reads: the PrometheusRule's spec, next to a copy of the unit tests. */
function promtoolDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'promtool-'));
  writeFileSync(join(dir, 'rules.yaml'), stringify(rulesDoc.spec));
  copyFileSync(RULE_TESTS, join(dir, 'rules.test.yaml'));
  return dir;
}

/** A Debian tool the specs here run, or a clear reason why they cannot. */
function requireTool(command: string, debianPackage: string): void {
  const r = spawnSync(command, ['--version'], { encoding: 'utf8' });
  if (r.error) throw new Error(`${command} not found: install Debian's ${debianPackage} package (.ci/run does)`);
}

describe('deploy/prometheus: alert rules', () => {
  before(() => requireTool('promtool', 'prometheus'));

  it('is a PrometheusRule with exactly the promised alerts, each with a severity and a runbook section in docs/operations.md', () => {
    assert.equal(rulesDoc.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(rulesDoc.kind, 'PrometheusRule');
    assert.deepEqual(rules.map((r) => r.alert).sort(), [...ALERTS].sort());
    const operations = readFileSync(join(REPO_ROOT, 'docs/operations.md'), 'utf8');
    const anchors = new Set([...operations.matchAll(/^#+ (.+)$/gm)].map((m) => anchorOf(m[1]!)));
    for (const r of rules) {
      assert.ok(['page', 'warning'].includes(r.labels.severity!), `${r.alert} severity`);
      assert.ok(r.annotations.summary && r.annotations.description, `${r.alert} summary and description`);
      const [file, anchor] = r.annotations.runbook_url!.split('#');
      assert.equal(file, 'docs/operations.md', r.alert);
      assert.ok(anchors.has(anchor!), `docs/operations.md has no section #${anchor} for ${r.alert}`);
    }
    assert.equal(rules.find((r) => r.alert === 'RuntimeAgentRollbackFailed')!.labels.severity, 'page');
  });

  it('passes promtool check rules', () => {
    const dir = promtoolDir();
    try {
      const out = execFileSync('promtool', ['check', 'rules', join(dir, 'rules.yaml')], { encoding: 'utf8' });
      assert.match(out, new RegExp(`SUCCESS: ${ALERTS.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes promtool test rules, with a test for every alert that fires and one where it stays quiet', () => {
    const tests = parse(readFileSync(RULE_TESTS, 'utf8')).tests as Array<{
      alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }>;
      input_series: Array<{ series: string }>;
    }>;
    for (const alert of ALERTS) {
      const cases = tests.flatMap((t) =>
        t.alert_rule_test.filter((c) => c.alertname === alert).map((c) => ({ c, series: t.input_series.length })),
      );
      assert.ok(
        cases.some(({ c }) => c.exp_alerts.length > 0),
        `${alert}: no test where it fires`,
      );
      // Quiet: a case expecting nothing, or a firing case whose input has series that must not fire (the
      // expected list is exact, so every other series staying quiet is checked too).
      assert.ok(
        cases.some(({ c, series }) => c.exp_alerts.length === 0 || series > c.exp_alerts.length),
        `${alert}: no test where it stays quiet`,
      );
    }
    const dir = promtoolDir();
    try {
      const r = spawnSync('promtool', ['test', 'rules', join(dir, 'rules.test.yaml')], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /SUCCESS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/grafana: the dashboard', () => {
  it('imports cleanly: unique ids and refIds, a grid position, a Prometheus target and a description per panel', () => {
    for (const key of ['title', 'uid', 'schemaVersion', 'panels', 'templating', 'time'])
      assert.ok(key in dashboard, key);
    assert.equal(typeof dashboard.schemaVersion, 'number');
    const ids = (dashboard.panels as any[]).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of dashboard.panels as any[]) {
      for (const k of ['x', 'y', 'w', 'h']) assert.equal(typeof p.gridPos?.[k], 'number', `${p.title} gridPos.${k}`);
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
    }
    for (const p of queryPanels) {
      assert.ok(['timeseries', 'stat'].includes(p.type), p.title);
      assert.ok(p.description?.length > 10, `${p.title} says what it shows`);
      assert.ok(p.targets.length > 0, p.title);
      const refIds = p.targets.map((t: { refId: string }) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${p.title} refIds`);
      for (const t of p.targets) {
        assert.equal(t.datasource.uid, '${datasource}', p.title);
        assert.equal(typeof t.expr, 'string');
      }
    }
    const vars = (dashboard.templating.list as Array<{ name: string; type: string }>).map((v) => `${v.name}:${v.type}`);
    assert.deepEqual(vars, ['datasource:datasource', 'namespace:query', 'pod:query', 'workflow:query']);
  });

  it('covers what the operations kit promises, and docs/metrics.md describes every panel', () => {
    const rows = (dashboard.panels as any[]).filter((p) => p.type === 'row').map((p) => p.title);
    assert.deepEqual(rows, ['Overview', 'Durations', 'Steps', 'Rollbacks', 'FlowRunner (load generator)', 'Agent']);
    const exprs = queryPanels.flatMap((p) => p.targets.map((t: { expr: string }) => t.expr)).join('\n');
    for (const needed of [
      'workflow_runs_total',
      'workflow_success_total',
      'active_workflows',
      'workflow_queue_depth',
      'histogram_quantile(0.5, sum by (le, workflow_name) (rate(workflow_duration_seconds_bucket',
      'histogram_quantile(0.95, sum by (le, workflow_name) (rate(workflow_duration_seconds_bucket',
      'workflow_step_duration_seconds_count',
      'histogram_quantile(0.95, sum by (le, adapter, action)',
      'sum by (trigger, result) (increase(workflow_rollbacks_total',
      'flow_runner_rps',
      'flow_runner_active_users',
      'histogram_quantile(0.95, sum by (le, step_id) (rate(flow_runner_request_duration_seconds_bucket',
      'sum by (kind) (rate(flow_runner_errors_total',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'runtime_agent_event_loop_lag_p99_seconds',
      'runtime_agent_store_bytes',
    ])
      assert.ok(exprs.includes(needed), `no panel queries ${needed}`);
    for (const p of queryPanels)
      assert.match(p.targets[0].expr, /namespace=~"\$namespace", pod=~"\$pod"/, `${p.title} follows the variables`);
    const metricsDoc = readFileSync(join(REPO_ROOT, 'docs/metrics.md'), 'utf8');
    for (const p of queryPanels) assert.ok(metricsDoc.includes(`**${p.title}**`), `docs/metrics.md: ${p.title}`);
  });
});

// --- a real Prometheus scraping a real agent --------------------------------------------------------

const FUNCTIONS_AND_KEYWORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'rate',
  'increase',
  'histogram_quantile',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
]);

/** A PromQL expression's metric selectors and the label names it relies on (matchers, by and on lists). */
function selectorsOf(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const labels = new Set<string>();
  let rest = expr.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, list: string) => {
    for (const l of list.split(',')) if (l.trim()) labels.add(l.trim());
    return ' ';
  });
  rest = rest.replace(/\{([^}]*)\}/g, (_m, inner: string) => {
    for (const m of inner.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]!);
    return ' ';
  });
  rest = rest.replace(/"[^"]*"/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  const metrics = new Set<string>();
  for (const m of rest.matchAll(/([a-zA-Z_:][\w:]*)\s*(\()?/g)) {
    const [, name, call] = m;
    if (call || FUNCTIONS_AND_KEYWORDS.has(name!) || /^\d/.test(name!) || /^\d+[smhd]$/.test(name!)) continue;
    if (/^(?:le|[smhd])$/.test(name!)) continue;
    metrics.add(name!);
  }
  return { metrics, labels };
}

/** Dashboard variables as the test's Prometheus has them: every namespace, pod and workflow. */
const concrete = (expr: string) =>
  expr
    .replaceAll('$namespace', '.*')
    .replaceAll('$pod', '.*')
    .replaceAll('$workflow', '.*')
    .replaceAll('$__rate_interval', '30s')
    .replaceAll('$__range', '10m');

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

describe('deploy/: every dashboard query and alert series, against a real Prometheus scraping a real agent', () => {
  let agent: AgentProcess;
  let prometheus: ChildProcess | undefined;
  let promUrl: string;
  let promDir: string;
  let target: Server;

  async function query(expr: string): Promise<PromResult[]> {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await r.json()) as { status: string; error?: string; data: { result: PromResult[] } };
    assert.equal(body.status, 'success', `${expr}: ${body.error}`);
    return body.data.result;
  }

  before(async function () {
    this.timeout(120_000);
    requireTool('prometheus', 'prometheus');
    target = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    agent = await startAgent({ env: { POD_NAME: 'agent-0', POD_NAMESPACE: 'ops' } });
    promDir = mkdtempSync(join(tmpdir(), 'prometheus-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const agentPort = new URL(agent.url).port;
    // The target labels Prometheus's Kubernetes discovery (or a ServiceMonitor) adds: namespace and pod.
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        scrape_configs: [
          {
            job_name: 'runtime-agent',
            static_configs: [{ targets: [`127.0.0.1:${agentPort}`], labels: { namespace: 'ops', pod: 'agent-0' } }],
          },
        ],
      }),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(promDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(promDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
      ],
      { stdio: 'ignore' },
    );
    await waitFor(async () => (await fetch(`${promUrl}/-/ready`)).ok, 'Prometheus to be ready', 60_000, 200);

    // The work the panels show: bundled workflows, a rollback that fails, a cancel, and a FlowRunner flow.
    const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    const submit = async (body: unknown) => {
      const r = await agent.request('POST', '/execute', body);
      assert.equal(r.status, 202, r.text);
      return r.body.execution_id as string;
    };
    const flow = await agent.request('POST', '/api/start', {
      config: { flow_target_url: targetUrl, sim_users: 2, min_sleep_ms: 20, max_sleep_ms: 40 },
      flowmap: { name: 'probe', steps: [{ id: 'home', type: 'request', url: '/' }] },
    });
    assert.equal(flow.status, 200, flow.text);
    const breaking = pkg(
      'rollback-breaks',
      [
        shellStep('make', ['true'], { rollback: { action: 'run', with: { command: ['false'] } } }),
        shellStep('break', ['false']),
      ],
      { rollback: { enabled: true } },
    );
    await waitFor(async () => (await query('up == 1')).length > 0, 'the first scrape', 60_000, 250);
    const ids = [
      await submit({ workflow_id: 'host-report-1.0.0' }),
      await submit({ workflow_id: 'http-health-check-1.0.0', parameters: { url: `${agent.url}/health` } }),
      await submit({ workflow_id: 'rollback-demo-1.0.0', parameters: { workdir: join(promDir, 'demo') } }),
      await submit({ wpk_content: breaking }),
    ];
    const napping = await submit({ wpk_content: pkg('napping', [shellStep('nap', ['sleep', '30'])]) });
    await waitForStatus(agent, napping, ['running']);
    assert.equal((await agent.request('POST', `/execute/${napping}/cancel`)).status, 202);
    for (const id of [...ids, napping])
      await waitForStatus(agent, id, ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed']);
    // A few scrapes with everything in them, the flow still running (rates need two samples in their window).
    const scraped = (expr: string, what: string) =>
      waitFor(async () => (await query(expr)).length > 0, `Prometheus to have scraped ${what}`, 60_000, 250);
    await scraped('workflow_rollbacks_total{result="rollback_failed"}', 'the first runs');
    // Counters born in one scrape have no increase yet: run the same again, so rates have something to show.
    const again = [await submit({ workflow_id: 'host-report-1.0.0' }), await submit({ wpk_content: breaking })];
    for (const id of again) await waitForStatus(agent, id, ['completed', 'rollback_failed']);
    await scraped('increase(workflow_duration_seconds_count[30s]) > 0', 'more runs ending');
    await scraped('increase(workflow_rollbacks_total[30s]) > 0', 'another rollback');
    await scraped('increase(flow_runner_request_duration_seconds_count[30s]) > 0', 'flow requests');
  });

  after(async () => {
    prometheus?.kill('SIGKILL');
    await agent?.request('POST', '/api/stop').catch(() => {});
    await agent?.stop();
    agent?.cleanup();
    target?.close();
    if (promDir) rmSync(promDir, { recursive: true, force: true });
  });

  it('answers every dashboard query with at least one series', async () => {
    const empty: string[] = [];
    for (const p of queryPanels)
      for (const t of p.targets) if ((await query(concrete(t.expr))).length === 0) empty.push(`${p.title}: ${t.expr}`);
    assert.deepEqual(empty, [], 'queries with no series');
  });

  it('finds every series the dashboard and the alert rules read, with every label they name', async () => {
    const exprs = [
      ...queryPanels.flatMap((p) => p.targets.map((t: { expr: string }) => concrete(t.expr))),
      ...rules.map((r) => r.expr),
    ];
    const problems: string[] = [];
    for (const expr of exprs) {
      const { metrics, labels } = selectorsOf(expr);
      assert.ok(metrics.size > 0, `no metric found in ${expr}`);
      const seen = new Set<string>();
      for (const metric of metrics) {
        const series = await query(metric);
        if (series.length === 0) problems.push(`${metric}: no series`);
        for (const s of series) for (const l of Object.keys(s.metric)) seen.add(l);
      }
      for (const l of labels) if (l !== '__name__' && !seen.has(l)) problems.push(`${expr}: no series has label ${l}`);
    }
    assert.deepEqual(problems, []);
  });

  it('the label check is not blind: a label no series has and a metric that does not exist are found', async () => {
    const { metrics, labels } = selectorsOf(
      'sum by (namespace, colour) (rate(workflow_runs_total{status="failed"}[5m])) / on (pod) nope_total',
    );
    assert.deepEqual([...metrics].sort(), ['nope_total', 'workflow_runs_total']);
    assert.deepEqual([...labels].sort(), ['colour', 'namespace', 'pod', 'status']);
    assert.equal((await query('nope_total')).length, 0);
    const series = await query('workflow_runs_total');
    assert.ok(series.length > 0 && series.every((s) => !('colour' in s.metric)));
  });
});
