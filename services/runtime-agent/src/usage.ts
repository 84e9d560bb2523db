/**
 * The agent's description of its own configuration, generated from FLAGS and SETTINGS (config.ts):
 * the text of --help, and the table of docs/configuration.md (npm run docs:config writes it).
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

/** Markdown's special characters in a table cell, escaped (an underscore inside a word needs none). */
function cell(text: string): string {
  return text.replace(/[\\|*<>[\]`~]/g, (c) => `\\${c}`);
}

/** The settings table of docs/configuration.md. */
export function settingsTable(): string {
  const rows = SETTINGS.map(
    (s) =>
      `| \`${s.env}\` | ${s.default === '' ? '(unset)' : `\`${defaultText(s)}\``} | ${cell(s.doc)}. Accepts: ${cell(s.accepts)}. |`,
  );
  return ['| Setting | Default | Description |', '| --- | --- | --- |', ...rows].join('\n');
}

/** The page whose settings table withSettingsTable() writes, relative to the repository root. */
export const CONFIGURATION_PAGE = 'docs/configuration.md';

export const TABLE_BEGIN =
  '<!-- settings table: generated from SETTINGS in services/runtime-agent/src/config.ts by npm run docs:config; edit the doc strings there -->';
export const TABLE_END = '<!-- end of the generated settings table -->';

/** `page` with the text between the markers replaced by the current table; throws when a marker is missing. */
export function withSettingsTable(page: string): string {
  const begin = page.indexOf(TABLE_BEGIN);
  const end = page.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`the page has no "${TABLE_BEGIN}" ... "${TABLE_END}" markers`);
  return `${page.slice(0, begin + TABLE_BEGIN.length)}\n\n${settingsTable()}\n\n${page.slice(end)}`;
}
