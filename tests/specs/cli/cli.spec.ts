/**
 * The `runtime-agent` command line, run as a real process against a real agent process: each command and
 * flag, the output forms, and the exit codes (0 completed, 1 failed/refused, 2 usage, 3 not found, 4
 * unreachable or not authenticated).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { COMMANDS } from '../../../services/runtime-agent/src/cli/cli.js';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { type AgentProcess, startAgent, useAgentWithTokens } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { uniqueName } from '../http/http-support.js';
import { waitFor } from '../support/wait.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube/index.js';

const CLI = join(REPO_ROOT, 'services/runtime-agent/src/cli/main.ts');
/** No run of the CLI in these specs takes longer; a hung one is killed and fails its test. */
const CLI_TIMEOUT_MS = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c) => (stdout += c));
    proc.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), CLI_TIMEOUT_MS);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace on stderr:\n${stderr}`);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(options.stdin ?? '');
  });
}

describe('CLI: runtime-agent', function () {
  // Each test runs the CLI a dozen times, each a fresh Node process with tsx: seconds on a loaded machine.
  this.timeout(180_000);
  let agent: AgentProcess;
  let scratch: string;
  let env: Record<string, string>;
  /** Runs the CLI against the agent. */
  const ra = (args: string[], more: { stdin?: string; env?: Record<string, string> } = {}) =>
    runCli(args, { stdin: more.stdin, env: { ...env, ...more.env } });
  const file = (name: string, content: unknown) => {
    const path = join(scratch, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  before(async () => {
    agent = await startAgent();
    env = { RUNTIME_AGENT_URL: agent.url };
    scratch = mkdtempSync(join(tmpdir(), 'runtime-agent-cli-'));
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('--help lists every command, and each command --help every flag it takes', async () => {
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    for (const name of ['serve', ...Object.keys(COMMANDS)]) assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'));
    assert.match(top.stdout, /exit codes: 0/);
    for (const [name, command] of Object.entries(COMMANDS)) {
      const r = await runCli([name, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^usage: runtime-agent ${name}`));
      for (const [flag, spec] of Object.entries(command.options)) {
        assert.match(r.stdout, new RegExp(`--${flag}\\b`), `${name} --help names --${flag}`);
        if (spec.short) assert.match(r.stdout, new RegExp(`-${spec.short}, --${flag}`));
      }
      for (const flag of ['--server', '--token-file']) assert.ok(r.stdout.includes(flag));
    }
    const version = await runCli(['--version']);
    assert.match(version.stdout, /^runtime-agent \d+\.\d+\.\d+\n$/);
    const serve = await runCli(['serve', '--help']);
    assert.equal(serve.code, 0);
    assert.match(serve.stdout, /--insecure-no-auth/, "serve --help is the agent's own");
    const none = await runCli([]);
    assert.equal(none.code, 2);
  });

  it('runs as installed (bin/runtime-agent.mjs, what npx runs): dist/ is built first when stale, quietly on stdout', async () => {
    const r = await new Promise<Run>((resolve, reject) => {
      const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin/runtime-agent.mjs'), 'list', '-o', 'name'], {
        cwd: tmpdir(),
        env: { PATH: process.env.PATH, ...env },
      });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (c) => (stdout += c));
      proc.stderr.on('data', (c) => (stderr += c));
      proc.on('error', reject);
      proc.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stdout.split('\n').every((l) => l === '' || /^[0-9a-f-]{36}$/.test(l)),
      `ids only on stdout (a build says so on stderr): ${r.stdout}`,
    );
  });

  it('submit -f --wait exits 0 when it completed; --follow prints the log and exits 1 when it failed', async () => {
    const ok = file('ok.yaml', pkg(uniqueName('cli-ok'), [shellStep('hello', ['echo', 'hello from cli'])]));
    const r = await ra(['submit', '-f', ok, '--wait']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /execution \S+ completed\n$/);

    const failing = file('fail.json', pkg(uniqueName('cli-fail'), [shellStep('boom', ['false'])]));
    const f = await ra(['submit', '-f', failing, '--follow']);
    assert.equal(f.code, 1);
    assert.match(f.stdout, /\[boom\] ERROR step failed: command_failed/);
    assert.match(f.stdout, /execution \S+ failed\n$/);

    const both = await ra(['submit', '-f', ok, '--wait', '--follow']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--wait and --follow/);
  });

  it('submit takes the package on stdin, parameters from -p and --param-file, --dry-run, -o name|json|yaml', async () => {
    const wpk = pkg(
      uniqueName('cli-params'),
      [shellStep('say', ['printf', '%s-%s', '${{ params.a }}', '${{ params.n }}'])],
      {
        parameters: { a: { type: 'string', default: 'x' }, n: { type: 'integer', default: 0 } },
      },
    );
    const params = file('params.yaml', 'a: from-file\nn: 1\n');
    const name = await ra(['submit', '-f', '-', '--param-file', params, '-p', 'n=7', '-o', 'name', '--wait'], {
      stdin: JSON.stringify(wpk),
    });
    assert.equal(name.code, 0, name.stderr);
    const id = name.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/, 'only the id');
    const rec = await ra(['get', id, '-o', 'json']);
    const record = JSON.parse(rec.stdout);
    assert.deepEqual(record.parameters, { a: 'from-file', n: 7 }, '-p wins over the file, 7 read as a number');
    assert.equal(record.steps[0].outputs.stdout, 'from-file-7');

    const dry = await ra(['submit', '-f', '-', '--dry-run', '-o', 'yaml'], { stdin: JSON.stringify(wpk) });
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(parseYaml(dry.stdout).dry_run, true);

    const bad = await ra(['submit', '-f', '-', '-p', 'n=notanumber'], { stdin: JSON.stringify(wpk) });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /\$\.parameters\.n: must be an integer/);
    const noEq = await ra(['submit', '-f', '-', '-p', 'justaname'], { stdin: JSON.stringify(wpk) });
    assert.equal(noEq.code, 2);
    assert.match(noEq.stderr, /name=value/);
    const missing = await ra(['submit', '-f', join(scratch, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml does not exist/);
  });

  it('submit --idempotency-key answers the same execution twice', async () => {
    const wpk = file('idem.json', pkg(uniqueName('cli-idem'), [shellStep('a', ['true'])]));
    const key = randomBytes(8).toString('hex');
    const first = await ra(['submit', '-f', wpk, '--idempotency-key', key, '-o', 'name']);
    const again = await ra(['submit', '-f', wpk, '--idempotency-key', key]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`execution ${first.stdout.trim()} already submitted with this key`));
  });

  it('validate says valid or lists every problem (exit 2); workflows lists the catalog and shows one', async () => {
    const good = await ra(['validate', '--workflow', 'rollback-demo-1.0.0']);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /rollback-demo-1.0.0: valid/);
    const badFile = file(
      'bad.yaml',
      'apiVersion: wpk/v1\nkind: Workflow\nmetadata: { name: x }\nspec: { handlers: [] }\n',
    );
    const bad = await ra(['validate', '-f', badFile]);
    assert.equal(bad.code, 2);
    assert.match(bad.stdout, /invalid/);
    assert.match(bad.stdout, /error {4}\$\.metadata/);
    const withParams = await ra([
      'validate',
      '--workflow',
      'rollback-demo-1.0.0',
      '-p',
      'failAt=nowhere',
      '-o',
      'json',
    ]);
    assert.equal(withParams.code, 2);
    assert.equal(JSON.parse(withParams.stdout).errors[0].path, '$.parameters.failAt');

    const all = await ra(['workflows']);
    assert.match(all.stdout, /^WORKFLOW\s+SOURCE\s+PARAMETERS/);
    assert.match(all.stdout, /restart-unhealthy-1\.0\.0\s+bundled\s+namespace,deployment\*,selector\*/);
    const wide = await ra(['workflows', '-o', 'wide']);
    assert.match(wide.stdout, /ADAPTERS\s+ROLLBACK/);
    const names = await ra(['workflows', '-o', 'name']);
    assert.ok(names.stdout.split('\n').includes('host-report-1.0.0'));
    const one = await ra(['workflows', 'rollback-demo-1.0.0']);
    assert.match(one.stdout, /failAt: string, default "verify"/);
    assert.match(one.stdout, /steps: make-workdir → write-config → write-release → verify/);
    const unknown = await ra(['workflows', 'nope-1.0.0']);
    assert.equal(unknown.code, 3);
  });

  it('list filters by --failed, --running, --status, --workflow, --since and --limit, as a table or for scripts', async () => {
    const name = uniqueName('cli-list');
    const wpk = file('list.json', pkg(name, [shellStep('a', ['false'])]));
    const failed = (await ra(['submit', '-f', wpk, '--wait', '-o', 'name'])).stdout.trim();
    const workflow = `${name}-1.0.0`;
    const table = await ra(['list', '--failed', '--workflow', workflow]);
    assert.match(table.stdout, /^ID\s+WORKFLOW\s+STATUS\s+STEPS\s+CREATED\s+DURATION\n/);
    assert.match(table.stdout, new RegExp(`${failed}\\s+${workflow}\\s+failed\\s+1/1\\s+\\d+s ago`));
    const wide = await ra(['list', '--status', 'failed', '--workflow', workflow, '-o', 'wide']);
    assert.match(wide.stdout, /BY\s+DRY RUN\s+ROLLBACK\s+ERROR/);
    assert.match(wide.stdout, /a: command exited with code 1/);
    const json = await ra(['list', '--status', 'completed', '--status', 'failed', '--since', '1h', '-o', 'json']);
    const rows = JSON.parse(json.stdout) as Array<{ status: string }>;
    assert.ok(rows.length > 0 && rows.every((e) => e.status === 'completed' || e.status === 'failed'));
    const limited = await ra(['list', '--limit', '1', '-o', 'name']);
    assert.equal(limited.stdout.trim().split('\n').length, 1);
    const running = await ra(['list', '--running', '--workflow', workflow]);
    assert.equal(running.stdout, 'no executions\n');
    const past = await ra(['list', '--until', '2000-01-01T00:00:00Z', '-o', 'json']);
    assert.deepEqual(JSON.parse(past.stdout), []);
    const future = await ra(['list', '--since', '2999-01-01T00:00:00Z', '-o', 'json']);
    assert.deepEqual(JSON.parse(future.stdout), []);
    const badStatus = await ra(['list', '--status', 'sleeping']);
    assert.equal(badStatus.code, 2);
    assert.match(badStatus.stderr, /query\.status/);
    const badFormat = await ra(['list', '-o', 'xml']);
    assert.equal(badFormat.code, 2);
  });

  it('get shows steps, error and rollback of an id or @latest; logs --tail, --step, --since, --timestamps, -o json', async () => {
    const wpk = file(
      'get.json',
      pkg(uniqueName('cli-get'), [shellStep('one', ['echo', 'first']), shellStep('two', ['printf', 'a\\nb\\nc\\n'])]),
    );
    const id = (await ra(['submit', '-f', wpk, '--wait', '-o', 'name'])).stdout.trim();
    const latest = await ra(['get', '@latest']);
    assert.match(latest.stdout, new RegExp(`^execution {3}${id}\n`));
    assert.match(
      latest.stdout,
      /STEP\s+STATUS\s+ACTION\s+ATTEMPTS\s+DURATION\s+NOTE\none\s+succeeded\s+shell\.run\s+1/,
    );
    const yaml = parseYaml((await ra(['get', id, '-o', 'yaml'])).stdout);
    assert.equal(yaml.execution_id, id);

    const all = (await ra(['logs', id])).stdout;
    assert.match(all, /\[one\] first\n/);
    const tail = await ra(['logs', id, '--tail', '2']);
    assert.equal(tail.stdout.trim().split('\n').length, 2);
    assert.ok(all.endsWith(tail.stdout));
    const step = await ra(['logs', id, '--step', 'two']);
    assert.ok(
      step.stdout
        .split('\n')
        .filter(Boolean)
        .every((l) => l.startsWith('[two]')),
    );
    assert.match(step.stdout, /\[two\] b\n/);
    const stamped = await ra(['logs', id, '--timestamps', '--tail', '1']);
    assert.match(stamped.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z /);
    const future = await ra(['logs', id, '--since', '2999-01-01T00:00:00Z']);
    assert.equal(future.stdout, '');
    const recent = await ra(['logs', id, '--since', '1h']);
    assert.equal(recent.stdout, all);
    const json = await ra(['logs', id, '-o', 'json', '--tail', '1']);
    assert.equal(JSON.parse(json.stdout).message, 'execution completed');
    const followEnded = await ra(['logs', id, '-f', '--tail', '0']);
    assert.equal(followEnded.code, 0, 'an ended execution: -f returns at once with its outcome');
  });

  it('logs -f and wait follow a running execution to its end; wait --timeout gives up with exit 1; cancel stops one', async () => {
    const gate = join(scratch, 'gate');
    const wpk = file(
      'wait.json',
      pkg(uniqueName('cli-wait'), [
        shellStep('hold', ['sh', '-c', 'while [ ! -e "$0" ]; do sleep 0.05; done', gate]),
        shellStep('after', ['echo', 'past the gate']),
      ]),
    );
    const id = (await ra(['submit', '-f', wpk, '-o', 'name'])).stdout.trim();
    const timedOut = await ra(['wait', id, '--timeout', '1s']);
    assert.equal(timedOut.code, 1);
    assert.match(timedOut.stderr, /has not ended after 1s/);
    const following = ra(['logs', id, '-f']);
    const waiting = ra(['wait', id]);
    writeFileSync(gate, '');
    const [f, w] = await Promise.all([following, waiting]);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /\[after\] past the gate\n/);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, `execution ${id} completed\n`);

    const sleeper = file('sleep.json', pkg(uniqueName('cli-cancel'), [shellStep('nap', ['sleep', '30'])]));
    const napping = (await ra(['submit', '-f', sleeper, '-o', 'name'])).stdout.trim();
    const c = await ra(['cancel', napping, '--wait']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /cancel/);
    const rec = JSON.parse((await ra(['get', napping, '-o', 'json'])).stdout);
    assert.equal(rec.status, 'cancelled');
    const again = await ra(['cancel', napping]);
    assert.equal(again.code, 1, 'refused: it has ended');
    assert.match(again.stderr, /only pending or running executions can be cancelled/);
  });

  it('retry --from-step --param-file --follow runs the rest again; rollback --wait undoes it (exit 0), a second one is refused', async () => {
    const flag = join(scratch, 'retry-flag');
    const marker = join(scratch, 'made');
    const wpk = file(
      'retry.json',
      pkg(
        uniqueName('cli-retry'),
        [
          shellStep('make', ['touch', marker], {
            rollback: { action: 'run', with: { command: ['rm', '-f', marker] } },
          }),
          shellStep('check', ['test', '-e', '${{ params.flag }}']),
        ],
        { parameters: { flag: { type: 'string', default: join(scratch, 'never') } } },
      ),
    );
    const id = (await ra(['submit', '-f', wpk, '--wait', '-o', 'name'])).stdout.trim();
    writeFileSync(flag, '');
    const r = await ra([
      'retry',
      id,
      '--from-step',
      'check',
      '--param-file',
      file('flag.yaml', `flag: ${flag}\n`),
      '--follow',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`retries ${id} from check, 1 step\\(s\\) kept`));
    assert.match(r.stdout, /retry of \S+: 1 step\(s\) kept from it, not run again/);
    assert.doesNotMatch(r.stdout, /\[make\]/, 'make is not run again');
    const retryId = /execution (\S+) retries/.exec(r.stdout)![1];

    const refused = await ra(['rollback', id]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`roll back ${retryId} instead`));
    const rb = await ra(['rollback', retryId, '--wait']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout, /rolled_back\n$/);
    const events = await ra(['events', '--execution', id, '--type', 'execution.retried', '-o', 'json']);
    assert.equal(JSON.parse(events.stdout).data.retry_id, retryId);
    const followRb = await ra(['rollback', retryId, '--follow']);
    assert.equal(followRb.code, 1, 'a second rollback is refused');
  });

  it('events lists the journal after --since and follows it (-f); -o json is one event per line', async () => {
    await ra([
      'submit',
      '-f',
      file('before.json', pkg(uniqueName('cli-before'), [shellStep('a', ['true'])])),
      '--wait',
    ]);
    const first = await ra(['events', '-o', 'json']);
    const seqs = first.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).seq as number);
    const since = seqs[seqs.length - 1];
    const follow = spawn(process.execPath, ['--import', 'tsx', CLI, 'events', '-f', '--since', String(since)], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, ...env },
    });
    let out = '';
    const seen = new Promise<void>((resolve) => {
      follow.stdout.on('data', (c) => {
        out += c;
        if (/execution\.status_changed .* running → completed/.test(out)) resolve();
      });
    });
    const wpk = file('events.json', pkg(uniqueName('cli-events'), [shellStep('a', ['true'])]));
    await ra(['submit', '-f', wpk, '--wait']);
    await seen;
    follow.kill();
    const lines = out.trim().split('\n');
    assert.ok(Number(lines[0].split(' ')[0]) > since, 'only events after --since');
    assert.match(out, /execution\.created/);
    const byWorkflow = await ra(['events', '--workflow', 'nope-9.9.9', '-o', 'json']);
    assert.equal(byWorkflow.stdout, '', 'no event of a workflow that never ran');
    const typed = await ra(['events', '--since', String(since), '--type', 'step.finished', '-o', 'json']);
    const events = typed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(events.length > 0 && events.every((e) => e.type === 'step.finished' && e.seq > since));
    const badType = await ra(['events', '--type', 'nope']);
    assert.equal(badType.code, 2);
    const fromNow = spawn(process.execPath, ['--import', 'tsx', CLI, 'events', '-f', '-o', 'json'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, ...env },
    });
    let live = '';
    fromNow.stdout.on('data', (c) => (live += c));
    // The follower starts at the end of the journal once it has read it: an execution submitted before
    // that is not shown, so submit until one shows up (bounded).
    const submitted: string[] = [];
    try {
      await waitFor(
        async () => {
          if (live.includes('"execution.created"')) return true;
          submitted.push((await ra(['submit', '-f', wpk, '-o', 'name'])).stdout.trim());
          return waitFor(() => live.includes('"execution.created"'), 'the follower to print', 2000).catch(() => false);
        },
        'events -f to show a new execution',
        60_000,
        0,
      );
    } finally {
      fromNow.kill();
    }
    const firstLive = JSON.parse(live.split('\n')[0]);
    assert.ok(firstLive.seq > since, 'without --since, -f starts at the end of the journal');
    assert.ok(submitted.includes(firstLive.execution_id), 'only what happened after it started');
  });

  it('exits 3 for an unknown execution, 4 when the agent cannot be reached, 2 for an unknown command or flag', async () => {
    const unknown = await ra(['get', 'no-such-execution']);
    assert.equal(unknown.code, 3);
    assert.equal(unknown.stderr, 'runtime-agent: execution no-such-execution not found\n');
    const down = await runCli(['list', '--server', 'http://127.0.0.1:9']);
    assert.equal(down.code, 4);
    assert.match(down.stderr, /cannot reach the agent at http:\/\/127\.0\.0\.1:9 .*set --server or RUNTIME_AGENT_URL/);
    const viaEnv = await runCli(['list'], { env: { RUNTIME_AGENT_URL: 'http://127.0.0.1:9' } });
    assert.equal(viaEnv.code, 4);
    const notUrl = await runCli(['list', '--server', 'nowhere']);
    assert.equal(notUrl.code, 2);
    const command = await ra(['frobnicate']);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /unknown command 'frobnicate'/);
    const flag = await ra(['list', '--bogus']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--bogus.*runtime-agent list --help/);
    const none = await ra(['get']);
    assert.equal(none.code, 2);
  });

  it('keeps stdout to what -o asks for, and refuses what a command cannot do instead of ignoring it', async () => {
    const wpk = file('forms.json', pkg(uniqueName('cli-forms'), [shellStep('say', ['echo', 'said'])]));
    const name = await ra(['submit', '-f', wpk, '-o', 'name', '--follow']);
    assert.equal(name.code, 0, name.stderr);
    assert.match(name.stdout, /^[0-9a-f-]{36}\n$/, 'the id alone, no log lines');
    const json = await ra(['submit', '-f', wpk, '-o', 'json', '--wait']);
    const ended = JSON.parse(json.stdout);
    assert.equal(ended.status, 'completed', 'the record as it ended, not the 202 answer');
    assert.equal(ended.steps[0].outputs.stdout, 'said\n');

    const refusals: Array<[string[], RegExp]> = [
      [['get', 'a', 'b'], /unexpected argument 'b'/],
      [['logs', ended.execution_id, '-o', 'yaml'], /-o yaml: use one of table, json/],
      [['list', '--server', `${agent.url}/api`], /without a path or query/],
      [['submit', '-f', '-', '--param-file', '-'], /only one of them can read stdin/],
      [['-o', 'json', 'list'], /the command comes first/],
    ];
    for (const [args, message] of refusals) {
      const r = await ra(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const badParam = await ra(['retry', ended.execution_id, '--from-step', 'say', '-p', 'nosuch=1']);
    assert.equal(badParam.code, 2);
    assert.match(badParam.stderr, /\$\.parameters\.nosuch/);
    const stuck = file('stuck.json', pkg(uniqueName('cli-stuck'), [shellStep('nap', ['sleep', '30'])]));
    const napping = (await ra(['submit', '-f', stuck, '-o', 'name'])).stdout.trim();
    const gaveUp = await ra(['wait', napping, '--timeout', '1ms']);
    assert.equal(gaveUp.code, 1, 'a timeout before the stream even opened is a timeout too');
    assert.match(gaveUp.stderr, /has not ended after 1ms/);
    await ra(['cancel', napping, '--wait']);
  });

  describe('through the Kubernetes API (--pod)', () => {
    let kube: FakeKube;
    let kubeEnv: Record<string, string>;
    before(async () => {
      kube = await startFakeKube({ namespace: 'shop' });
      kube.seed({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'web-0', namespace: 'shop', labels: { app: 'web' } },
        spec: {
          containers: [
            { name: 'app', image: 'web:1' },
            { name: 'agent', image: 'runtime-agent:1' },
          ],
        },
      });
      // The agent of this spec plays the sidecar: port 8080 of pod shop/web-0 leads to it.
      kube.forwardPod('shop', 'web-0', (port) => (port === 8080 ? { host: '127.0.0.1', port: agent.port } : undefined));
      kubeEnv = { KUBECONFIG: kube.writeKubeconfigFile(join(scratch, 'kube')) };
    });
    after(() => kube.close());

    it("reaches the agent on a pod's loopback through pods/portforward, following an execution to its end", async () => {
      const wpk = file(
        'pod.json',
        pkg(uniqueName('cli-pod'), [shellStep('hi', ['echo', 'hello through the API server'])]),
      );
      const r = await runCli(['submit', '-f', wpk, '--follow', '--pod', 'web-0', '-n', 'shop'], { env: kubeEnv });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\[hi\] hello through the API server\n/);
      const id = /execution (\S+) submitted/.exec(r.stdout)![1];
      const listed = await runCli(['list', '--pod', 'web-0', '-o', 'name'], { env: kubeEnv });
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(listed.stdout.split('\n')[0], id, "the context's namespace (shop) by default");
      assert.ok(kube.forwarded.length >= 2, 'each run went through the API server');
      assert.ok(kube.forwarded.every((f) => f.namespace === 'shop' && f.pod === 'web-0' && f.port === 8080));
    });

    it('says which pod, namespace or context is wrong, and when nothing listens on the port', async () => {
      const missing = await runCli(['list', '--pod', 'web-9', '-n', 'shop'], { env: kubeEnv });
      assert.equal(missing.code, 3);
      assert.equal(missing.stderr, 'runtime-agent: pod web-9 not found in namespace shop\n');
      const context = await runCli(['list', '--pod', 'web-0', '--context', 'prod'], { env: kubeEnv });
      assert.equal(context.code, 2);
      assert.match(context.stderr, /--context prod is not in the kubeconfig; it has: fake-kube/);
      const port = await runCli(['list', '--pod', 'web-0', '--server', 'http://127.0.0.1:9090'], { env: kubeEnv });
      assert.equal(port.code, 4);
      assert.match(port.stderr, /cannot reach the agent in pod web-0 in namespace shop/);
      const alone = await runCli(['list', '-n', 'shop'], { env: kubeEnv });
      assert.equal(alone.code, 2);
      assert.match(alone.stderr, /go with --pod/);
    });

    describe('a fleet (--selector)', () => {
      let second: AgentProcess;
      before(async () => {
        second = await startAgent();
        kube.seed({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' } },
          spec: { containers: [{ name: 'agent', image: 'runtime-agent:1' }] },
        });
        kube.seed({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'db-0', namespace: 'shop', labels: { app: 'db' } },
          spec: { containers: [{ name: 'agent', image: 'runtime-agent:1' }] },
        });
        kube.forwardPod('shop', 'web-1', (port) =>
          port === 8080 ? { host: '127.0.0.1', port: second.port } : undefined,
        );
      });
      after(async () => {
        await second.stop();
        second.cleanup();
      });

      it('merges list, get and events of every pod the selector picks, each row naming its pod', async () => {
        const name = uniqueName('cli-fleet');
        const wpk = file('fleet.json', pkg(name, [shellStep('a', ['true'])]));
        const onFirst = (await ra(['submit', '-f', wpk, '--wait', '-o', 'name'])).stdout.trim();
        const onSecond = (
          await runCli(['submit', '-f', wpk, '--wait', '-o', 'name'], { env: { RUNTIME_AGENT_URL: second.url } })
        ).stdout.trim();

        const table = await runCli(['list', '-l', 'app=web', '--workflow', `${name}-1.0.0`], { env: kubeEnv });
        assert.equal(table.code, 0, table.stderr);
        assert.match(table.stdout, /^POD\s+ID\s+WORKFLOW\s+STATUS/);
        assert.match(table.stdout, new RegExp(`\nweb-1\\s+${onSecond}\\s+${name}-1.0.0\\s+completed`), 'newest first');
        assert.match(table.stdout, new RegExp(`\nweb-0\\s+${onFirst}\\s+`));
        assert.doesNotMatch(table.stdout, /db-0/);
        const json = JSON.parse(
          (
            await runCli(['list', '--selector', 'app=web', '--workflow', `${name}-1.0.0`, '-o', 'json'], {
              env: kubeEnv,
            })
          ).stdout,
        ) as Array<{ pod: string; execution_id: string }>;
        assert.deepEqual(
          json.map((e) => [e.pod, e.execution_id]),
          [
            ['web-1', onSecond],
            ['web-0', onFirst],
          ],
        );

        const got = await runCli(['get', onFirst, '-l', 'app=web'], { env: kubeEnv });
        assert.equal(got.code, 0, got.stderr);
        assert.match(got.stdout, new RegExp(`^pod {9}web-0\nexecution {3}${onFirst}\n`));
        const latest = JSON.parse(
          (await runCli(['get', '@latest', '-l', 'app=web', '-o', 'json'], { env: kubeEnv })).stdout,
        );
        assert.equal(latest.pod, 'web-1');
        const nowhere = await runCli(['get', 'no-such-id', '-l', 'app=web'], { env: kubeEnv });
        assert.equal(nowhere.code, 3);
        assert.match(nowhere.stderr, /not found on web-0, web-1/);

        const events = await runCli(['events', '-l', 'app=web', '--type', 'execution.created', '-o', 'json'], {
          env: kubeEnv,
        });
        const pods = new Set(
          events.stdout
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l).pod),
        );
        assert.deepEqual([...pods].sort(), ['web-0', 'web-1']);

        const submit = await runCli(['submit', '-f', wpk, '-l', 'app=web'], { env: kubeEnv });
        assert.equal(submit.code, 2);
        assert.match(submit.stderr, /--selector works with list, get, events/);
        const none = await runCli(['list', '-l', 'app=none'], { env: kubeEnv });
        assert.equal(none.code, 3);
        assert.match(none.stderr, /no pod in namespace shop matches --selector app=none/);
      });
    });
  });

  describe('with tokens', () => {
    const {
      agent: secured,
      token,
      dir: tokenDir,
    } = useAgentWithTokens({ platform: ['admin'], dashboards: ['viewer'] });
    let dir: string;
    before(() => {
      dir = tokenDir();
      writeFileSync(join(dir, 'admin'), `${token('platform')}\n`);
      writeFileSync(join(dir, 'viewer'), token('dashboards'));
    });

    it('reads the token from --token-file or RUNTIME_AGENT_TOKEN_FILE, exits 4 without one, and audit shows who did what', async () => {
      const url = { RUNTIME_AGENT_URL: secured.url };
      const without = await runCli(['list'], { env: url });
      assert.equal(without.code, 4);
      assert.match(without.stderr, /set --token-file or RUNTIME_AGENT_TOKEN_FILE/);
      const viewing = await runCli(['list', '--token-file', join(dir, 'viewer')], { env: url });
      assert.equal(viewing.code, 0, viewing.stderr);
      const below = await runCli(['audit'], { env: { ...url, RUNTIME_AGENT_TOKEN_FILE: join(dir, 'viewer') } });
      assert.equal(below.code, 4);
      assert.match(below.stderr, /needs the admin role/);
      const missingFile = await runCli(['list', '--token-file', join(dir, 'nope')], { env: url });
      assert.equal(missingFile.code, 2);
      assert.match(missingFile.stderr, /the token file .*nope does not exist/);
      // The agent's own tokens file (a list) is not a token: a clear usage error, not "cannot reach the agent".
      writeFileSync(join(dir, 'tokens-list.yaml'), '- name: platform\n  token: abc\n  roles: [admin]\n');
      const list = await runCli(['list', '--token-file', join(dir, 'tokens-list.yaml')], { env: url });
      assert.equal(list.code, 2);
      assert.match(list.stderr, /must hold one token .*not a list of tokens/);

      const adminEnv = { ...url, RUNTIME_AGENT_TOKEN_FILE: join(dir, 'admin') };
      const wpk = file('audited.json', pkg(uniqueName('cli-audit'), [shellStep('a', ['true'])]));
      const id = (await runCli(['submit', '-f', wpk, '--wait', '-o', 'name'], { env: adminEnv })).stdout.trim();
      const audit = await runCli(['audit', '--actor', 'platform', '--execution', id], { env: adminEnv });
      assert.equal(audit.code, 0, audit.stderr);
      assert.match(audit.stdout, /^SEQ\s+WHEN\s+WHO\s+REQUEST\s+STATUS\s+EXECUTION\n/);
      assert.match(audit.stdout, new RegExp(`platform\\s+POST /execute\\s+202\\s+${id}`));
      const json = await runCli(['audit', '--limit', '1', '--since', '0', '-o', 'json'], { env: adminEnv });
      assert.equal(JSON.parse(json.stdout).length, 1);
    });
  });
});
