/**
 * `runtime-agent`: the command line for the SRE on call (main.ts runs it). `runtime-agent serve` runs the agent; every other
 * command talks to a running one over its HTTP API. Exit codes: 0 done (the execution completed); 1 the
 * execution failed, was cancelled or rolled back, or the agent refused; 2 usage or validation error; 3 not
 * found; 4 cannot reach or authenticate to the agent. Errors are one line on stderr, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { VERSION } from '../paths.js';
import { CliError, Client, connection, DEFAULT_SERVER, EXIT } from './client.js';
import * as cmd from './commands.js';
import { checkPod, type Forward, forwardToPod, openKube, podsOf } from './kube.js';
import { type Format, parseFormat, stdoutOut } from './output.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  run: (ctx: cmd.Ctx) => Promise<number>;
  usage: string;
  /** How many arguments besides the flags: [least, most]. */
  args: [number, number];
  /** The -o forms it has (default: every one). */
  formats?: Format[];
  summary: string;
  options: Options;
  /** Lines of help for each option, in order. */
  help: string[];
}

const PARAMS: Options = {
  param: { type: 'string', short: 'p', multiple: true },
  'param-file': { type: 'string' },
};
const PARAMS_HELP = [
  '-p, --param NAME=VALUE   a parameter (repeat it); VALUE is read as JSON when it is JSON (7, true, {"a":1}), else as text',
  '--param-file FILE        parameters from a YAML or JSON object (- for stdin); -p wins over it',
];
const PACKAGE: Options = { file: { type: 'string', short: 'f' }, workflow: { type: 'string' } };
const PACKAGE_HELP = [
  '-f, --file FILE          the package, YAML or JSON (- for stdin)',
  '--workflow ID            a package the agent knows (see `runtime-agent workflows`)',
];
const OUTPUT: Options = { output: { type: 'string', short: 'o' } };
const OUTPUT_HELP = ['-o, --output FORMAT      table (default), wide, json, yaml or name (ids only)'];
const FOLLOW: Options = { wait: { type: 'boolean' }, follow: { type: 'boolean' } };
const FOLLOW_HELP = [
  '--wait                   wait for the end (a progress line at a terminal); exit 0 only if it completed',
  '--follow                 print its log from the first line until the end; exit 0 only if it completed',
];

export const COMMANDS: Record<string, Command> = {
  submit: {
    run: cmd.submit,
    usage:
      'submit (-f FILE | --workflow ID) [-p NAME=VALUE]... [--param-file FILE] [--dry-run] [--idempotency-key KEY] [--wait | --follow]',
    args: [0, 0],
    summary: 'run a package',
    options: {
      ...PACKAGE,
      ...PARAMS,
      'dry-run': { type: 'boolean' },
      'idempotency-key': { type: 'string' },
      ...FOLLOW,
      ...OUTPUT,
    },
    help: [
      ...PACKAGE_HELP,
      ...PARAMS_HELP,
      '--dry-run                show what it would do, change nothing',
      '--idempotency-key KEY    the same key and request again answer the same execution',
      ...FOLLOW_HELP,
      ...OUTPUT_HELP,
    ],
  },
  validate: {
    run: cmd.validate,
    usage: 'validate (-f FILE | --workflow ID) [-p NAME=VALUE]... [--param-file FILE]',
    args: [0, 0],
    formats: ['table', 'json', 'yaml'],
    summary: 'check a package (and parameters) without running it; exit 2 when invalid',
    options: { ...PACKAGE, ...PARAMS, ...OUTPUT },
    help: [...PACKAGE_HELP, ...PARAMS_HELP, ...OUTPUT_HELP],
  },
  workflows: {
    run: cmd.workflows,
    usage: 'workflows [WORKFLOW_ID]',
    args: [0, 1],
    summary: 'the packages the agent knows, with their parameters (* required); one of them in full',
    options: OUTPUT,
    help: OUTPUT_HELP,
  },
  list: {
    run: cmd.listExecutions,
    usage: 'list [--failed | --running | --status STATUS...] [--since 1h] [--until TIME] [--workflow ID] [--limit N]',
    args: [0, 0],
    summary: 'executions, newest first',
    options: {
      status: { type: 'string', multiple: true },
      failed: { type: 'boolean' },
      running: { type: 'boolean' },
      since: { type: 'string' },
      until: { type: 'string' },
      workflow: { type: 'string' },
      limit: { type: 'string' },
      ...OUTPUT,
    },
    help: [
      '--status STATUS          pending, running, completed, failed, cancelled, rolling_back, rolled_back, rollback_failed (repeat it, or a,b)',
      '--failed                 failed, rolled_back and rollback_failed',
      '--running                pending, running and rolling_back',
      '--since, --until TIME    created after / before: a duration back from now (30m, 1h, 2d) or an RFC 3339 time',
      '--workflow ID            one workflow',
      '--limit N                at most N (default 50, at most 500)',
      ...OUTPUT_HELP,
    ],
  },
  get: {
    run: cmd.get,
    usage: 'get ID|@latest',
    args: [1, 1],
    summary: 'an execution: its steps, errors and rollback',
    options: OUTPUT,
    help: OUTPUT_HELP,
  },
  logs: {
    run: cmd.logs,
    usage: 'logs ID|@latest [-f] [--step NAME] [--since 10m] [--tail N] [--timestamps]',
    args: [1, 1],
    formats: ['table', 'json'],
    summary: "an execution's log",
    options: {
      follow: { type: 'boolean', short: 'f' },
      step: { type: 'string' },
      since: { type: 'string' },
      tail: { type: 'string' },
      timestamps: { type: 'boolean' },
      ...OUTPUT,
    },
    help: [
      '-f, --follow             keep printing new lines until the execution ends; exit 0 only if it completed',
      '--step NAME              one step only',
      '--since TIME             lines written after it: a duration back from now (10m) or an RFC 3339 time',
      '--tail N                 only the last N lines (then new ones with -f)',
      '--timestamps             each line with its time',
      '-o, --output json        one JSON object per line (the default is text)',
    ],
  },
  cancel: {
    run: cmd.cancel,
    usage: 'cancel ID|@latest [--wait]',
    args: [1, 1],
    summary: 'cancel a pending or running execution',
    options: { wait: { type: 'boolean' }, ...OUTPUT },
    help: ['--wait                   until it has stopped', ...OUTPUT_HELP],
  },
  rollback: {
    run: cmd.rollback,
    usage: 'rollback ID|@latest [--wait | --follow]',
    args: [1, 1],
    summary: 'undo a failed, cancelled or completed execution; exit 0 only if it ends rolled_back',
    options: { ...FOLLOW, ...OUTPUT },
    help: [
      '--wait                   wait for the rollback to end',
      '--follow                 print the log until the rollback ends',
      ...OUTPUT_HELP,
    ],
  },
  retry: {
    run: cmd.retry,
    usage: 'retry ID|@latest [--from-step NAME] [-p NAME=VALUE]... [--param-file FILE] [--wait | --follow]',
    args: [1, 1],
    summary: 'run an ended execution again from the step that failed; earlier steps keep their outputs',
    options: { 'from-step': { type: 'string' }, ...PARAMS, ...FOLLOW, ...OUTPUT },
    help: [
      '--from-step NAME         start there instead (the steps before it must have succeeded)',
      ...PARAMS_HELP.map((l) => l.replace('a parameter', 'change a parameter')),
      ...FOLLOW_HELP,
      ...OUTPUT_HELP,
    ],
  },
  wait: {
    run: cmd.wait,
    usage: 'wait ID|@latest [--timeout 10m]',
    args: [1, 1],
    summary: 'wait for an execution to end; exit 0 only if it completed',
    options: { timeout: { type: 'string' }, ...OUTPUT },
    help: ['--timeout DURATION       give up after it (90s, 10m, 2h, 1d): exit 1', ...OUTPUT_HELP],
  },
  events: {
    run: cmd.events,
    usage: 'events [-f] [--since SEQ] [--execution ID] [--workflow ID] [--type TYPE]...',
    args: [0, 0],
    formats: ['table', 'json'],
    summary: 'the event journal: every state change, each with its seq',
    options: {
      follow: { type: 'boolean', short: 'f' },
      since: { type: 'string' },
      execution: { type: 'string' },
      workflow: { type: 'string' },
      type: { type: 'string', multiple: true },
      ...OUTPUT,
    },
    help: [
      '-f, --follow             keep printing events as they happen (Ctrl-C to stop)',
      '--since SEQ              events after this seq (resume where you stopped)',
      '--execution ID           one execution (or @latest)',
      '--workflow ID            one workflow',
      '--type TYPE              one event type (repeat it), such as execution.status_changed',
      '-o, --output json        one JSON object per line (the default is text)',
    ],
  },
  audit: {
    run: cmd.audit,
    usage: 'audit [--since SEQ] [--limit N] [--actor NAME] [--execution ID]',
    args: [0, 0],
    formats: ['table', 'json', 'yaml'],
    summary: 'who changed what (admin)',
    options: {
      since: { type: 'string' },
      limit: { type: 'string' },
      actor: { type: 'string' },
      execution: { type: 'string' },
      ...OUTPUT,
    },
    help: [
      '--since SEQ              entries after this seq',
      '--limit N                at most N (default 100)',
      '--actor NAME             one token name',
      '--execution ID           one execution',
      ...OUTPUT_HELP,
    ],
  },
};

const GLOBAL: Options = {
  server: { type: 'string' },
  'token-file': { type: 'string' },
  pod: { type: 'string' },
  selector: { type: 'string', short: 'l' },
  namespace: { type: 'string', short: 'n' },
  context: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};
const GLOBAL_HELP = [
  `--server URL             the agent (default ${DEFAULT_SERVER}; or RUNTIME_AGENT_URL)`,
  '--token-file FILE        a file holding the token, when the agent has tokens (or RUNTIME_AGENT_TOKEN_FILE)',
  "--pod NAME               the agent in this pod, through the Kubernetes API's port-forward (your kubeconfig);",
  "                         it listens on the pod's loopback at the port of --server",
  '-l, --selector LABELS    (list, get and events) the agents of every pod these labels pick (app=web),',
  '                         merged, each row naming its pod',
  "-n, --namespace NS       the pod's namespace (default: the kubeconfig context's)",
  '--context NAME           a kubeconfig context other than the current one',
  '-h, --help               this help',
];

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 3;
  return [
    `runtime-agent ${VERSION}: runs workflow packages with rollback, dry run and an event journal`,
    '',
    'usage: runtime-agent COMMAND [flags]',
    '',
    'commands:',
    `  ${'serve'.padEnd(width)}run the agent (runtime-agent serve --help)`,
    `  ${'version'.padEnd(width)}print the version (also --version)`,
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`),
    '',
    'flags of every command:',
    ...GLOBAL_HELP.map((l) => `  ${l}`),
    '',
    'exit codes: 0 done (the execution completed); 1 it failed, was cancelled or rolled back, or the agent',
    'refused; 2 usage or validation error; 3 not found; 4 cannot reach or authenticate to the agent',
    '',
    'runtime-agent COMMAND --help shows the flags of a command.',
    '',
  ].join('\n');
}

function commandUsage(c: Command): string {
  return [
    `usage: runtime-agent ${c.usage}`,
    '',
    `${c.summary[0].toUpperCase()}${c.summary.slice(1)}.`,
    '',
    'flags:',
    ...c.help.map((l) => `  ${l}`),
    ...GLOBAL_HELP.map((l) => `  ${l}`),
    '',
  ].join('\n');
}

/** Runs one command line; the exit code (-1: `serve`, the agent runs on and sets its own). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage());
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return EXIT.ok;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`runtime-agent ${VERSION}\n`);
    return EXIT.ok;
  }
  if (name === 'serve') {
    process.argv.splice(2, 1); // the agent reads its own flags (--help, --insecure-no-auth) after the command
    await import('../main.js');
    return -1;
  }
  const command = COMMANDS[name];
  if (!command) {
    const hint = name.startsWith('-') ? ': the command comes first (runtime-agent list -o json)' : '';
    throw new CliError(`unknown command '${name}'${hint}; runtime-agent --help lists the commands`, EXIT.usage);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, ...GLOBAL },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new CliError(
      `${(err as Error).message.split('. ')[0]}; runtime-agent ${name} --help lists the flags`,
      EXIT.usage,
    );
  }
  const flags = parsed.values as cmd.Ctx['flags'];
  if (flags.help) {
    process.stdout.write(commandUsage(command));
    return EXIT.ok;
  }
  if (flags.wait && flags.follow) throw new CliError('--wait and --follow: give one of them', EXIT.usage);
  const [least, most] = command.args;
  const n = parsed.positionals.length;
  if (n < least || n > most) {
    const extra = n > most ? `unexpected argument '${parsed.positionals[most]}'` : 'an argument is missing';
    throw new CliError(`${extra}; usage: runtime-agent ${command.usage}`, EXIT.usage);
  }
  if (flags.file === '-' && flags['param-file'] === '-') {
    throw new CliError('-f - and --param-file -: only one of them can read stdin', EXIT.usage);
  }
  const conn = connection(flags as { server?: string; 'token-file'?: string }, process.env);
  const format = parseFormat(flags.output as string | undefined, command.formats);
  const forwards: Forward[] = [];
  const ctx: cmd.Ctx = {
    client: new Client(conn),
    out: stdoutOut(),
    format,
    flags,
    args: parsed.positionals,
    readStdin: () => readFileSync(0, 'utf8'),
  };
  try {
    const { pod, selector } = flags;
    if (typeof pod === 'string' && typeof selector === 'string') {
      throw new CliError('--pod and --selector: give one of them', EXIT.usage);
    }
    if (typeof selector === 'string' && !FLEET_COMMANDS.includes(name)) {
      throw new CliError(
        `--selector works with ${FLEET_COMMANDS.join(', ')}; for ${name}, name one pod with --pod`,
        EXIT.usage,
      );
    }
    if (typeof pod === 'string' || typeof selector === 'string') {
      const kube = await openKube({
        namespace: flags.namespace as string | undefined,
        context: flags.context as string | undefined,
      });
      const port = Number(new URL(conn.server).port || 80);
      if (typeof pod === 'string') await checkPod(kube, pod);
      const pods = typeof pod === 'string' ? [pod] : await podsOf(kube, selector as string);
      const members: cmd.FleetMember[] = [];
      for (const p of pods) {
        const forward = await forwardToPod(kube, p, port);
        forwards.push(forward);
        members.push({
          pod: p,
          client: new Client({ ...conn, server: forward.url, via: `pod ${p} in namespace ${kube.namespace}` }),
        });
      }
      ctx.client = members[0].client;
      if (typeof selector === 'string') ctx.fleet = members;
    } else if (flags.namespace !== undefined || flags.context !== undefined) {
      throw new CliError('--namespace and --context go with --pod or --selector', EXIT.usage);
    }
    return await command.run(ctx);
  } finally {
    for (const f of forwards) f.close();
  }
}

/** The commands --selector runs across a fleet of agents. */
const FLEET_COMMANDS = ['list', 'get', 'events'];
