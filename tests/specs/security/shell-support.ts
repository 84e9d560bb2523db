/** Helpers for the shell policy specs: a step context, temporary directories, and a program that leaves a marker. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../../adapters/errors.js';
import { AdapterRegistry } from '../../../services/runtime-agent/src/adapter-registry.js';
import { createShellAdapter } from '../../../adapters/shell/index.js';
import type { RunInput, RunOutput } from '../../../adapters/shell/run.js';
import type { ShellSettings } from '../../../adapters/shell/settings.js';
import { PackageValidator } from '../../../services/runtime-agent/src/wpk/validate.js';
import { runChecked } from '../support/outputs.js';
import { stepContext } from '../support/step-context.js';

/** A node one-liner that prints its arguments as a JSON array: what the process really received. */
export const PRINT_ARGV = 'process.stdout.write(JSON.stringify(process.argv.slice(1)))';

/** A context whose log keeps every message, in order. */
export function makeContext(dryRun = false) {
  const { ctx, logs } = stepContext({ dryRun, executionId: 'security-test', step: 'run' });
  return { ctx, messages: () => logs.map((l) => l.message) };
}

/** The `run` action of a shell adapter built with `settings`, called directly. */
export function shellRun(settings: ShellSettings) {
  const action = createShellAdapter(settings).actions.run!;
  return {
    run: (input: RunInput) => runChecked(action, makeContext().ctx, input) as Promise<RunOutput>,
    dryRun: (input: RunInput) => action.run(makeContext(true).ctx, input),
  };
}

export async function rejectsWith(promise: Promise<unknown> | (() => unknown), type: string): Promise<AgentError> {
  const settled = typeof promise === 'function' ? Promise.resolve().then(promise) : promise;
  const err = await settled.then(
    () => assert.fail(`expected a ${type} error, but it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AgentError, `expected an AgentError, got ${String(err)}`);
  assert.equal(err.type, type, err.message);
  return err;
}

/** A package validator over a shell adapter built with `settings`. */
export function validatorFor(settings: ShellSettings): PackageValidator {
  return new PackageValidator(new AdapterRegistry([createShellAdapter(settings)]));
}

/** A fresh directory (its real path), removed after the enclosing block. */
export function useTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeEach(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), `${prefix}-`)));
  });
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    assert.ok(dir, 'the temporary directory exists only inside a test');
    return dir;
  };
}

/** Writes an executable shell script at `path` that creates `marker` when it runs. */
export function markerProgram(path: string, marker: string): string {
  writeFileSync(path, `#!/bin/sh\ntouch '${marker}'\n`);
  chmodSync(path, 0o755);
  return path;
}
