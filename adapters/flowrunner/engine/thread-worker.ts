/**
 * One worker thread of the pool (thread-pool.ts), hosting the shares of any number of flows at once, each
 * its own one-loop FlowRunner with its own connections. For each flow (`run`): set up on `run` and say
 * `ready`, start on `go`; send its numbers when it starts, after an update, every REPORT_INTERVAL_MS and
 * when its run ends, its log lines as they come; obey update, stop and drain (also before `go`: the run
 * then ends without a request). The thread lives on after a flow ends, for the next one.
 */
import { parentPort } from 'node:worker_threads';
import { EgressPolicy } from '../../shared/egress.js';
import { FlowRunner } from './runner.js';
import {
  type Envelope,
  type FromThread,
  REPORT_INTERVAL_MS,
  type ThreadInit,
  type ThreadReport,
  type ToThread,
} from './threads.js';

const port = parentPort!;

interface Hosted {
  runner: FlowRunner;
  timer?: NodeJS.Timeout;
}
const hosted = new Map<number, Hosted>();

function host(run: number, init: ThreadInit): void {
  const send = (m: FromThread) => port.postMessage({ run, m } satisfies Envelope<FromThread>);
  const runner = new FlowRunner(init.config, init.flowmap, {
    log: (level, message) => send({ type: 'log', level, message }),
    egress: new EgressPolicy(init.egress),
    limit: init.iterations === undefined ? undefined : { iterations: init.iterations },
    share: { thread: init.thread, threads: init.threads, flowUsers: init.flowUsers },
  });
  const h: Hosted = { runner };
  hosted.set(run, h);
  void runner.done.then(() => {
    clearInterval(h.timer);
    hosted.delete(run);
    send({ type: 'ended', report: report(runner) });
  });
  send({ type: 'ready' });
}

function report(runner: FlowRunner): ThreadReport {
  return {
    status: runner.status,
    pending_users: runner.pendingUsers,
    stats: runner.mergeableStats(),
    steps: runner.stats.stepCounters(),
  };
}

port.on('message', ({ run, m }: Envelope<ToThread>) => {
  if (m.type === 'run') return host(run, m.init);
  const h = hosted.get(run);
  if (!h) return;
  const { runner } = h;
  const send = (r: FromThread) => port.postMessage({ run, m: r } satisfies Envelope<FromThread>);
  if (m.type === 'go' && runner.status === 'initializing') {
    runner.start();
    send({ type: 'report', report: report(runner) });
    // A fixed rate whatever the load: one message per interval besides log lines and the answers to commands.
    h.timer = setInterval(() => send({ type: 'report', report: report(runner) }), REPORT_INTERVAL_MS);
  } else if (m.type === 'stop') void runner.stop();
  else if (m.type === 'drain') void runner.drain(m.graceMs);
  else if (m.type === 'update') {
    runner.update(m.config, m.flowUsers);
    send({ type: 'report', report: report(runner) });
  }
});
