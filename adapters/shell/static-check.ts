/**
 * The shell policy as far as it can be applied when a package is validated, on the raw `with`
 * (templates not rendered): so that /validate reports it and /execute queues nothing. The same rules
 * are applied again to the rendered input when the step runs (launch.ts); only what is certain before
 * rendering is reported here.
 */
import type { Problem } from '../errors.js';
import { jsonPath, type PathSegment } from '../shared/paths.js';
import { checkProgram, loaderVariables, notAllowedMessage } from './executables.js';
import { SHELL_PATH, loaderMessage } from './launch.js';
import type { ShellSettings } from './settings.js';
import { locateCwd } from './work-root.js';

type Report = (segments: PathSegment[], message: string) => void;

function isTemplate(v: unknown): v is string {
  return typeof v === 'string' && v.includes('${{');
}

/** A value known now: not a template, and a scalar that the command would pass as text. */
function literalText(v: unknown): string | undefined {
  if (isTemplate(v)) return undefined;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** shell: true must be allowed, and its script written out: a rendered value in it would be parsed by the shell as code. */
function checkScript(settings: ShellSettings, { shell, command }: Record<string, unknown>, report: Report): void {
  if (shell === true && !settings.allowShell) {
    report(
      ['shell'],
      'shell: true is not allowed by this agent (SHELL_ALLOW_SHELL is false); pass the program and its arguments as a list in command',
    );
  }
  if (shell !== true && !isTemplate(shell)) return;
  const why = shell === true ? 'with shell: true' : 'shell is a template and may render true, and then';
  if (isTemplate(command)) {
    report(
      ['command'],
      `${why} command[0] is a shell script, so command must be a list whose first entry is written out, not a template`,
    );
  } else if (Array.isArray(command) && isTemplate(command[0])) {
    report(
      ['command', 0],
      `${why} command[0] is a shell script, which must not contain \${{ }}: the shell would parse the rendered value as code. ` +
        'Pass the value as a further command entry and use "$1" (the second entry), "$2", … in the script',
    );
  }
}

/** Under an allowlist: the program, where it is known now, and no loader variables in env. */
function checkExecutable(
  settings: ShellSettings,
  { shell, command, env }: Record<string, unknown>,
  report: Report,
): void {
  const allowed = settings.allowedExecutables;
  if (allowed === undefined) return;
  // The program is known only when shell is literal and command[0] has no template; a refused
  // shell: true is reported already, and a relative path with a slash depends on a cwd known at run time.
  const program =
    shell === true
      ? settings.allowShell
        ? SHELL_PATH
        : undefined
      : shell === undefined || shell === false
        ? literalText(Array.isArray(command) ? command[0] : undefined)
        : undefined;
  if (program !== undefined && (program.startsWith('/') || !program.includes('/'))) {
    const verdict = checkProgram(allowed, program, settings.workRoot ?? process.cwd());
    if (!verdict.ok && verdict.reason === 'not_allowed')
      report(shell === true ? ['shell'] : ['command', 0], notAllowedMessage(program, verdict, allowed));
  }
  if (env !== null && typeof env === 'object' && !Array.isArray(env)) {
    for (const key of loaderVariables(env as Record<string, unknown>)) report(['env', key], loaderMessage([key]));
  }
}

/** Under a work root: a written-out cwd must not lead out (a missing one may be made by an earlier step). */
function checkCwd(settings: ShellSettings, { cwd }: Record<string, unknown>, report: Report): void {
  if (settings.workRoot === undefined || typeof cwd !== 'string' || isTemplate(cwd)) return;
  if (locateCwd(settings.workRoot, cwd).status === 'outside') {
    report(
      ['cwd'],
      `is outside SHELL_WORK_ROOT '${settings.workRoot}' (through '..', an absolute path or a symbolic link); use a directory inside it`,
    );
  }
}

export function checkRunStatic(
  settings: ShellSettings,
): (withRaw: Record<string, unknown>, at: PathSegment[]) => Problem[] {
  return (withRaw, at) => {
    const problems: Problem[] = [];
    const report: Report = (segments, message) => problems.push({ path: jsonPath([...at, ...segments]), message });
    if (Array.isArray(withRaw.command)) {
      withRaw.command.forEach((entry, i) => {
        if (literalText(entry)?.includes('\0'))
          report(['command', i], 'contains a NUL byte, which no process argument can hold');
      });
    }
    checkScript(settings, withRaw, report);
    checkExecutable(settings, withRaw, report);
    checkCwd(settings, withRaw, report);
    return problems;
  };
}
