/**
 * Ramp-up: with ramp_up_seconds, users start spread evenly over that time (user i of n after i * ramp / n),
 * as seen at a real local target; users added by update() are ramped from the update; stop, a lower
 * sim_users and run limits cancel users still waiting for their start; bad values are listed problems.
 * Timers never fire early, so the bounds below hold however loaded the machine is.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { parseConfig, parseUpdate } from '../../../adapters/flowrunner/engine/index.js';
import { waitFor } from '../support/wait.js';
import { quietPeriod, req, startRunner, useTarget, type Target } from './target.js';

const user = { 'X-User': '{{userId}}' };
/** A light flow: one request per iteration, then a pause, so that the target only sees who started when. */
const flow = { steps: [req('hit', '/hit', { headers: user })] };
const light = { min_sleep_ms: 100, max_sleep_ms: 150 };

/** When (performance.now()) each user's first request arrived, by user number. */
function firstArrivals(target: Target): Map<number, number> {
  const first = new Map<number, number>();
  for (const r of target.hits('/hit')) {
    const n = Number(String(r.headers['x-user']).replace('user-', ''));
    if (!first.has(n)) first.set(n, r.at);
  }
  return first;
}

/** Waits until `users` users have sent their first request; then when each one did, by user number. */
const arrivalsOf = (target: Target, users: number, what: string) =>
  waitFor(
    () => {
      const first = firstArrivals(target);
      return first.size === users && first;
    },
    what,
    15_000,
  );

/** Timer granularity: a timer may fire up to a millisecond before its nominal time as performance.now() sees it. */
const EARLY_MS = 3;

describe('FlowRunner engine: ramp-up', () => {
  const target = useTarget();

  it('starts users evenly over ramp_up_seconds: user i of n not before i * ramp / n, few in the first second', async () => {
    const t0 = performance.now();
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 20, ramp_up_seconds: 2, ...light }, flow);
    try {
      const s = runner.snapshot();
      assert.deepEqual([s.active_users, s.pending_users], [1, 19], 'only the first user starts at once');
      const first = await arrivalsOf(target, 20, 'every user’s first request');
      for (const [n, at] of first)
        assert.ok(at - t0 >= (n - 1) * 100 - EARLY_MS, `user ${n} arrived ${Math.round(at - t0)} ms after start`);
      const inFirstSecond = [...first.values()].filter((at) => at - t0 < 1000).length;
      assert.ok(inFirstSecond <= 11, `${inFirstSecond} of 20 users started in the first second`);
      assert.ok(Math.max(...first.values()) - t0 >= 1900 - EARLY_MS, 'the last user starts near the end of the ramp');
      assert.deepEqual([runner.snapshot().active_users, runner.snapshot().pending_users], [20, 0]);
    } finally {
      await runner.stop();
    }
  });

  it('stop during the ramp stops everything: no user waiting for its start ever starts', async () => {
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 10, ramp_up_seconds: 1, ...light }, flow);
    await waitFor(() => firstArrivals(target).size >= 2, 'two users started');
    await runner.stop();
    assert.equal(runner.status, 'stopped');
    assert.equal(runner.snapshot().pending_users, 0);
    const seen = target.requests.length;
    // Eight users were due at 100 ms intervals: a window in which several would have started.
    await quietPeriod(400);
    assert.equal(target.requests.length, seen, 'requests arrived after stop');
    assert.ok(firstArrivals(target).size < 10);
  });

  it('update() raising sim_users ramps the new users over ramp_up_seconds from the update', async () => {
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 2, ...light }, flow);
    try {
      await waitFor(() => firstArrivals(target).size === 2, 'the first two users');
      const change = parseUpdate(runner.currentConfig, { sim_users: 12, ramp_up_seconds: 1 });
      assert.ok(change.ok, JSON.stringify(change));
      assert.deepEqual(change.changed.sort(), ['ramp_up_seconds', 'sim_users'], 'ramp_up_seconds changes live');
      const t1 = performance.now();
      runner.update(change.config);
      assert.equal(runner.snapshot().pending_users, 9, 'the first new user starts at once, nine wait');
      const first = await arrivalsOf(target, 12, 'the ten new users');
      for (let n = 3; n <= 12; n++)
        assert.ok(first.get(n)! - t1 >= (n - 3) * 100 - EARLY_MS, `new user ${n} arrived too early`);
    } finally {
      await runner.stop();
    }
  });

  it('lowering sim_users during the ramp cancels the users still waiting', async () => {
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 10, ramp_up_seconds: 2, ...light }, flow);
    try {
      const lower = parseUpdate(runner.currentConfig, { sim_users: 2 });
      assert.ok(lower.ok);
      runner.update(lower.config);
      assert.equal(runner.snapshot().pending_users, 1, 'only user 2 still waits');
      await waitFor(() => firstArrivals(target).size === 2, 'user 2 starting on time');
      await quietPeriod(450); // users 3..5 were due by now
      assert.deepEqual([...firstArrivals(target).keys()].sort(), [1, 2]);
    } finally {
      await runner.stop();
    }
  });

  it('an iterations limit ends the run only after every user started and finished', async () => {
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 5, ramp_up_seconds: 0.5 }, flow, {
      iterations: 1,
      durationMs: 15_000,
    });
    await runner.done;
    assert.equal(target.hits('/hit').length, 5);
    assert.equal(firstArrivals(target).size, 5);
    assert.equal(runner.snapshot().flow_count, 5);
  });

  it('a duration shorter than the ramp ends the run with the users it had; the rest never start', async () => {
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 10, ramp_up_seconds: 5, ...light }, flow, {
      durationMs: 300,
    });
    await runner.done;
    assert.equal(runner.snapshot().pending_users, 0);
    const seen = firstArrivals(target).size;
    assert.ok(seen <= 1, `${seen} users started in 300 ms of a 5 s ramp of 10 (user 2 was due at 500 ms)`);
    await quietPeriod(600);
    assert.equal(firstArrivals(target).size, seen);
  });

  it('validates ramp_up_seconds: a number of seconds from 0 to a day, fractions allowed, alias accepted', () => {
    const base = { flow_target_url: 'http://127.0.0.1:9', sim_users: 1 };
    const problem = (v: unknown) => {
      const r = parseConfig({ ...base, ramp_up_seconds: v });
      assert.ok(!r.ok, `${JSON.stringify(v)} accepted`);
      assert.equal(r.problems.length, 1);
      assert.deepEqual(r.problems[0]!.loc, ['body', 'config', 'ramp_up_seconds']);
      return r.problems[0]!;
    };
    assert.equal(problem(-1).type, 'greater_than_equal');
    assert.equal(problem('5').type, 'float_type');
    assert.equal(problem(true).type, 'float_type');
    assert.equal(problem(null).type, 'float_type');
    const tooLong = problem(86_401);
    assert.equal(tooLong.type, 'less_than_equal');
    assert.match(tooLong.msg, /86400/);
    const ok = parseConfig({ ...base, ramp_up_seconds: 2.5 });
    assert.ok(ok.ok && ok.config.ramp_up_seconds === 2.5);
    const alias = parseConfig({ ...base, 'Ramp Up Seconds': 3 });
    assert.ok(alias.ok && alias.config.ramp_up_seconds === 3);
    const byDefault = parseConfig(base);
    assert.ok(byDefault.ok && byDefault.config.ramp_up_seconds === 0);
    const current = (parseConfig(base) as { ok: true; config: never }).config;
    const badUpdate = parseUpdate(current, { ramp_up_seconds: -0.5 });
    assert.ok(!badUpdate.ok && badUpdate.status === 400);
    assert.deepEqual(badUpdate.problems[0]!.loc, ['body', 'ramp_up_seconds']);
  });
});
