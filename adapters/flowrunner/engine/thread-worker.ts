/**
 * One worker thread of a threaded FlowRunner (threaded-runner.ts): once loaded it says `ready` and starts on
 * `go`; runs its share of the users with the one-loop FlowRunner and its own connections; sends its numbers
 * when it starts, after an update, every REPORT_INTERVAL_MS and when its run ends, its log lines as they
 * come; obeys update, stop and drain (also before `go`: the run then ends without a request).
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { EgressPolicy } from '../../shared/egress.js';
import { FlowRunner } from './runner.js';
import { REPORT_INTERVAL_MS, type FromThread, type ThreadInit, type ThreadReport, type ToThread } from './threads.js';

const init = workerData as ThreadInit;
const port = parentPort!;
const send = (m: FromThread) => port.postMessage(m);

const runner = new FlowRunner(init.config, init.flowmap, {
  log: (level, message) => send({ type: 'log', level, message }),
  egress: new EgressPolicy(init.egress),
  limit: init.iterations === undefined ? undefined : { iterations: init.iterations },
  share: { thread: init.thread, threads: init.threads },
});

function report(): ThreadReport {
  return {
    status: runner.status,
    pending_users: runner.pendingUsers,
    stats: runner.mergeableStats(),
    steps: runner.stats.stepCounters(),
  };
}

let timer: NodeJS.Timeout | undefined;

port.on('message', (m: ToThread) => {
  if (m.type === 'go' && runner.status === 'initializing') {
    runner.start();
    send({ type: 'report', report: report() });
    // A fixed rate whatever the load: one message per interval besides log lines and the answers to commands.
    timer = setInterval(() => send({ type: 'report', report: report() }), REPORT_INTERVAL_MS);
  } else if (m.type === 'stop') void runner.stop();
  else if (m.type === 'drain') void runner.drain(m.graceMs);
  else if (m.type === 'update') {
    runner.update(m.config);
    send({ type: 'report', report: report() });
  }
});

void runner.done.then(() => {
  clearInterval(timer);
  send({ type: 'ended', report: report() });
  port.close();
});
// The HTTP client is loaded before `ready`, so the first requests do not wait for it (the threads start cold).
createRequire(import.meta.url)('undici');
send({ type: 'ready' });
