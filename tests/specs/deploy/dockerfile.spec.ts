/**
 * No Docker engine runs here, so the image is checked by reading its
 * Dockerfile and by running what it runs: the compiled agent from dist/, with
 * the image's environment, probed by the image's own HEALTHCHECK command.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { freePort, freshDataDir } from '../support/agent-process.js';
import { waitFor } from '../support/wait.js';

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const lines = dockerfile
  .replace(/\\\n\s*/g, ' ')
  .split('\n')
  .map((l) => l.trim());
const instr = (name: string) => lines.filter((l) => l.startsWith(`${name} `));

function execForm(line: string): string[] {
  const json = line.slice(line.indexOf('['));
  return JSON.parse(json) as string[];
}

function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of instr('ENV')) for (const m of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
  return env;
}

describe('Dockerfile', () => {
  it('is multi-stage, runs as a non-root user, keeps the data directory as a volume', () => {
    assert.ok(instr('FROM').length >= 2, 'multi-stage');
    assert.ok(
      instr('COPY').some((l) => l.includes('--from=build')),
      'runtime stage copies from the build stage',
    );
    const user = instr('USER').at(-1);
    assert.ok(user && !/\broot\b|\b0\b/.test(user), `non-root user, got ${user}`);
    assert.equal(imageEnv().DATA_DIR, '/data');
    assert.ok(instr('VOLUME').some((l) => l.includes('/data')));
    assert.ok(instr('HEALTHCHECK').length === 1);
    assert.equal(imageEnv().HOST, '127.0.0.1', 'the image binds to loopback like everywhere else');
  });

  it('the image command starts the compiled agent with the image environment, and its HEALTHCHECK passes', async function () {
    this.timeout(60_000);
    const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, build.stdout + build.stderr);
    const cmd = execForm(instr('CMD').at(-1)!);
    assert.equal(cmd[0], 'node');
    const dataDir = freshDataDir();
    const port = String(await freePort());
    const env = { PATH: process.env.PATH!, ...imageEnv(), DATA_DIR: dataDir, PORT: port };
    const agent = spawn(process.execPath, cmd.slice(1), { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    agent.stdout.on('data', (d) => (out += d));
    agent.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => agent.once('exit', r));
    try {
      await waitFor(() => out.includes('listening'), `the compiled agent to listen (output: ${out})`, 20_000);
      const health = execForm(instr('HEALTHCHECK')[0].slice(instr('HEALTHCHECK')[0].indexOf('CMD')));
      const probe = spawnSync(process.execPath, health.slice(1), { env: { ...env }, encoding: 'utf8' });
      assert.equal(probe.status, 0, `HEALTHCHECK failed: ${probe.stderr}`);
      const down = spawnSync(process.execPath, health.slice(1), { env: { ...env, PORT: '1' }, encoding: 'utf8' });
      assert.notEqual(down.status, 0, 'the HEALTHCHECK must fail when nothing answers');
      const r = await fetch(`http://127.0.0.1:${port}/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow_id: 'host-report-1.0.0', dry_run: true }),
      });
      assert.equal(r.status, 202, 'bundled workflows are found from dist/');
    } finally {
      agent.kill('SIGTERM');
      assert.equal(await exited, 0, `SIGTERM exits cleanly: ${out}`);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
