/**
 * How the CLI prints: aligned tables with relative times for a person at a terminal (colour only there),
 * JSON or YAML for scripts (`-o json|yaml`), bare ids with `-o name`.
 */
import { stringify } from 'yaml';
import { CliError, EXIT } from './client.js';

export type Format = 'table' | 'wide' | 'json' | 'yaml' | 'name';
const FORMATS: readonly Format[] = ['table', 'wide', 'json', 'yaml', 'name'];

/** The -o value, among the forms a command has (`allowed`, default: all). */
export function parseFormat(value: string | undefined, allowed: readonly Format[] = FORMATS): Format {
  if (value === undefined) return 'table';
  if ((allowed as readonly string[]).includes(value)) return value as Format;
  throw new CliError(`-o ${value}: use one of ${allowed.join(', ')}`, EXIT.usage);
}

export interface Out {
  write(text: string): void;
  /** stdout is a terminal: tables get colour, waits a progress line. */
  tty: boolean;
  now(): number;
}

export function stdoutOut(): Out {
  return {
    write: (t) => process.stdout.write(t),
    tty: process.stdout.isTTY === true,
    now: Date.now,
  };
}

const COLOURS: Record<string, number> = {
  completed: 32,
  succeeded: 32,
  rolled_back: 33,
  running: 36,
  rolling_back: 36,
  pending: 90,
  not_run: 90,
  skipped: 90,
  failed: 31,
  rollback_failed: 31,
  cancelled: 35,
  abandoned: 31,
};

/** A status, coloured at a terminal (unless NO_COLOR is set to something). */
export function status(out: Out, s: string): string {
  const c = COLOURS[s];
  return out.tty && !process.env.NO_COLOR && c ? `\u001b[${c}m${s}\u001b[0m` : s;
}

/** Visible width (colour codes take none). */
const ESCAPE = String.fromCharCode(27);
const width = (s: string) =>
  s
    .split(ESCAPE)
    .map((part, i) => (i === 0 ? part : part.replace(/^\[\d+m/, '')))
    .join('').length;

/** Rows as columns padded to their widest cell, the header first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - width(c))))
      .join('   ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** `3s`, `4m12s`, `2h5m`, `3d4h`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  const d = Math.floor(h / 24);
  return `${d}d${h % 24 ? `${h % 24}h` : ''}`;
}

/** `5m ago`, or `-` for no time. */
export function ago(out: Out, iso: string | null | undefined): string {
  return iso ? `${duration(out.now() - Date.parse(iso))} ago` : '-';
}

/** How long something ran: from start to finish, or to now while it runs. */
export function took(out: Out, start: string | null, end: string | null): string {
  if (!start) return '-';
  return duration((end ? Date.parse(end) : out.now()) - Date.parse(start));
}

/** `value` as JSON or YAML for scripts; false when the format is a person's (the caller prints a table). */
export function printData(out: Out, format: Format, value: unknown): boolean {
  if (format === 'json') out.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (format === 'yaml') out.write(stringify(value));
  else return false;
  return true;
}
