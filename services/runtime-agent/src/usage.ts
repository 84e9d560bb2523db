/**
 * The agent's description of its own configuration, generated from FLAGS and SETTINGS (config.ts):
 * the text of --help.
 */
import { FLAGS, SETTINGS } from './config.js';

/** A setting's default as a person reads it: `(unset)` for none, byte counts also in KiB/MiB/GiB. */
export function defaultText(s: { env: string; default: string }): string {
  if (s.default === '') return '(unset)';
  const n = Number(s.default);
  if (s.env.endsWith('_BYTES') || s.env.includes('_BYTES_')) {
    for (const [unit, size] of [
      ['GiB', 1024 ** 3],
      ['MiB', 1024 ** 2],
      ['KiB', 1024],
    ] as const)
      if (n >= size && n % size === 0) return `${s.default} (${n / size} ${unit})`;
  }
  return s.default;
}

/** `text` broken into lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

const WIDTH = 100;

/** What --help prints. */
export function usage(version: string): string {
  const indent = (text: string, by: number) => wrap(text, WIDTH - by).map((l) => `${' '.repeat(by)}${l}\n`);
  const out = [
    `runtime-agent ${version}: validates and runs workflow packages (WPK) with rollback, dry run, durable state and metrics\n`,
    '\n',
    'Usage:\n',
    '  npm start [-- FLAGS]                                  from a checkout (builds dist/ when needed)\n',
    '  node dist/services/runtime-agent/src/main.js [FLAGS]  from a build, as the container image does\n',
    '\n',
    'Flags:\n',
  ];
  for (const f of FLAGS) out.push(`  ${f.flag}\n`, ...indent(f.doc, 6));
  out.push(
    '\n',
    'Settings:\n',
    ...indent(
      'Each is an environment variable, or a key in lower case in the optional YAML file named by ' +
        'RUNTIME_AGENT_CONFIG; the environment wins. A bad value, or a file or directory a setting names ' +
        'that is missing, unreadable or malformed, stops the agent at start with one line naming the ' +
        'setting, and exit code 2.',
      2,
    ),
    '\n',
  );
  for (const s of SETTINGS)
    out.push(
      `  ${s.env} (${s.default === '' ? 'unset by default' : `default: ${defaultText(s)}`})\n`,
      ...indent(`${s.doc}. Accepts: ${s.accepts}.`, 6),
    );
  out.push(
    '\n',
    'Exit codes:\n',
    ...indent(
      '0 after a drained shutdown (and for --help and --version); 2 a bad flag or setting; 130 or 143 a ' +
        'second SIGINT or SIGTERM during the drain; 1 any other failure.',
      2,
    ),
  );
  return out.join('');
}
