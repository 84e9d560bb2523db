/**
 * End to end (npm run bench -- e2e): what a user of the agent sees. One round on the agent side is
 * POST /execute of a package with STEPS api steps (GET against the benchmark target, keep-alive), then
 * GET /logs/{id}?follow=true read as server-sent events until its `end` event, which must say
 * `completed`; the clock runs from sending the POST to reading `end`. The reference is STEPS plain
 * sequential got calls from the benchmark process to the same target. Target: agent <= 1.3x reference.
 *
 * Setup: the compiled agent (dist/, as `npm start` runs it) in its own process on a fresh temporary
 * DATA_DIR, the target (bench/target-server.mjs) in another, the benchmark client in a third, all on
 * 127.0.0.1. On 2 cores the three share the CPU: the agent's side has one process more at work (the
 * agent itself) than the reference's, which is part of what a user of a sidecar gets.
 *
 * How to read it: rounds come in pairs (one agent round, one reference round); pair i runs the agent
 * first when i is even and the reference first when it is odd, so neither side always runs right after
 * the other (GC, timers, the target's state). WARM_UP_PAIRS are run and discarded first (JIT tiers,
 * connection pools, prepared statements). The ratio is the median of the per-pair ratios, which is
 * robust to a neighbour's load spike hitting one pair; every pair is printed too. Also shown per pair:
 * the time to the 202 answer, the agent process's CPU time (from /proc, 10 ms resolution), the
 * benchmark process's CPU time while it waited (sending the POST, parsing the event stream), the
 * benchmark process's CPU time for the reference, and the number of log events streamed. The CPU per
 * step (agent and client against a reference call) moves less with the machine's load than the times,
 * so it is printed too, but the verdict is on the times.
 *
 * The agent's api adapter builds got's request options faster than got does (adapters/api/request-options.ts),
 * so each of its got calls costs less than a plain one. Each pair therefore also runs the reference a second
 * time with that build installed, and the ratio against it is printed as the agent's own work; the verdict
 * stays on plain got calls, as a user's script would make them.
 *
 * Bounded: at most MAX_PAIRS_SECONDS of measuring (it stops early with what it has, and fails with fewer
 * than MIN_PAIRS pairs), 30 s per request, and the agent and target processes and the data directory
 * are removed on every exit path (see bench/agent.ts for a benchmark that is killed).
 */
import { Agent } from 'node:http';
import got, { Options } from 'got';
import { fastRequestOptions, gotRequestOptions } from '../adapters/api/request-options.js';
import { withRequestOptions } from './request-options.js';
import { loadAverage, processCpuMs, REQUEST_TIMEOUT_MS, startCompiledAgent } from './agent.js';
import { median } from './stats.js';
import { pingPackage, startTarget } from './target.js';

const STEPS = 200;
const WARM_UP_PAIRS = 10;
const PAIRS = 21;
const MIN_PAIRS = 9;
const MAX_PAIRS_SECONDS = 120;
const TARGET = 1.3;

interface Pair {
  agentFirst: boolean;
  agentMs: number;
  referenceMs: number;
  /** POST /execute until its 202 answer. */
  acceptMs: number;
  /** CPU time the agent process used during its round. */
  agentCpuMs: number;
  /** CPU time the benchmark process (the client: POST, reading the event stream) used during the agent's round. */
  clientCpuMs: number;
  /** CPU time the benchmark process used for the reference's got calls. */
  referenceCpuMs: number;
  /** The same got calls with the request-options build the agent's api adapter installs (adapters/api/request-options.ts). */
  fixedReferenceMs: number;
  logEvents: number;
}

export async function endToEnd(): Promise<string> {
  const load0 = loadAverage();
  const target = await startTarget();
  let agent: Awaited<ReturnType<typeof startCompiledAgent>> | undefined;
  try {
    agent = await startCompiledAgent({ maxLifetimeSeconds: 300 });
    const agentUrl = agent.url;
    const agentPid = agent.pid;
    const retry = { limit: 0 };
    const timeout = { request: REQUEST_TIMEOUT_MS };
    const referenceClient = got.extend({ retry, timeout, agent: { http: new Agent({ keepAlive: true }) } });
    const agentClient = got.extend({ retry, timeout, agent: { http: new Agent({ keepAlive: true }) } });
    const body = JSON.stringify({ wpk_content: pingPackage('bench-e2e-200-api-steps', `${target.url}/ping`, STEPS) });

    const reference = async (): Promise<Pick<Pair, 'referenceMs' | 'referenceCpuMs'>> => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < STEPS; i++) await referenceClient.get(`${target.url}/ping`).json();
      const referenceMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      return { referenceMs, referenceCpuMs: (cpu.user + cpu.system) / 1000 };
    };

    // The agent's got builds request options faster than got's own (adapters/api/request-options.ts): the same
    // calls with that build show how much of the ratio is the agent's own work rather than its cheaper got calls.
    const gotOwn = gotRequestOptions(Options);
    const fast = fastRequestOptions(gotOwn);
    const fixedReference = async (): Promise<number> => (await withRequestOptions(fast, reference)).referenceMs;

    const viaAgent = async (): Promise<
      Omit<Pair, 'agentFirst' | 'referenceMs' | 'referenceCpuMs' | 'fixedReferenceMs'>
    > => {
      const cpu0 = processCpuMs(agentPid);
      const clientCpu0 = process.cpuUsage();
      const t0 = performance.now();
      const accepted = await agentClient
        .post(`${agentUrl}/execute`, { body, headers: { 'content-type': 'application/json' } })
        .json<{ execution_id: string }>();
      const acceptMs = performance.now() - t0;
      const stream = agentClient.stream(`${agentUrl}/logs/${accepted.execution_id}?follow=true`);
      let buffer = '';
      let logEvents = 0;
      let end: { status: string | null } | undefined;
      let endMs = 0;
      for await (const chunk of stream) {
        buffer += String(chunk);
        let cut = buffer.indexOf('\n\n');
        while (cut !== -1) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          cut = buffer.indexOf('\n\n');
          if (event.startsWith('event: log\n') || event.includes('\nevent: log\n')) logEvents++;
          else if (event.startsWith('event: end\n')) {
            endMs = performance.now() - t0;
            end = JSON.parse(event.slice(event.indexOf('data: ') + 6));
          }
        }
      }
      if (!end) throw new Error(`the log stream of ${accepted.execution_id} closed without an end event`);
      if (end.status !== 'completed') throw new Error(`e2e execution ${accepted.execution_id} ended ${end.status}`);
      const clientCpu = process.cpuUsage(clientCpu0);
      return {
        agentMs: endMs,
        acceptMs,
        agentCpuMs: processCpuMs(agentPid) - cpu0,
        clientCpuMs: (clientCpu.user + clientCpu.system) / 1000,
        logEvents,
      };
    };

    const runPair = async (i: number): Promise<Pair> => {
      const agentFirst = i % 2 === 0;
      if (agentFirst) {
        const a = await viaAgent();
        return { agentFirst, ...a, ...(await reference()), fixedReferenceMs: await fixedReference() };
      }
      const r = await reference();
      const fixedReferenceMs = await fixedReference();
      return { agentFirst, ...(await viaAgent()), ...r, fixedReferenceMs };
    };

    for (let i = 0; i < WARM_UP_PAIRS; i++) await runPair(i);
    const pairs: Pair[] = [];
    const deadline = performance.now() + MAX_PAIRS_SECONDS * 1000;
    for (let i = 0; i < PAIRS && performance.now() < deadline; i++) pairs.push(await runPair(i));
    if (pairs.length < MIN_PAIRS)
      throw new Error(`only ${pairs.length} pairs in ${MAX_PAIRS_SECONDS} s; at least ${MIN_PAIRS} are needed`);

    const ratios = pairs.map((p) => p.agentMs / p.referenceMs);
    const ratio = median(ratios);
    const fixedRatio = median(pairs.map((p) => p.agentMs / p.fixedReferenceMs));
    const agentMs = median(pairs.map((p) => p.agentMs));
    const referenceMs = median(pairs.map((p) => p.referenceMs));
    const perStepUs = (f: (p: Pair) => number) => (pairs.reduce((s, p) => s + f(p), 0) / (pairs.length * STEPS)) * 1000;
    const agentCpu = perStepUs((p) => p.agentCpuMs);
    const clientCpu = perStepUs((p) => p.clientCpuMs);
    const referenceCpu = perStepUs((p) => p.referenceCpuMs);
    const lines = [
      `e2e: POST /execute of ${STEPS} api steps + SSE log stream to its end event, compiled agent in its own process, vs ${STEPS} sequential got calls; ${pairs.length} pairs after ${WARM_UP_PAIRS} warm-up pairs`,
      '  pair  order      agent ms (202 ms)  reference ms  ratio  CPU ms agent/client/ref  log events',
      ...pairs.map(
        (p, i) =>
          `  ${String(i).padStart(4)}  ${p.agentFirst ? 'agent-1st' : 'ref-1st  '}  ${p.agentMs.toFixed(1).padStart(8)} (${p.acceptMs.toFixed(1).padStart(5)})  ${p.referenceMs.toFixed(1).padStart(12)}  ${ratios[i].toFixed(2).padStart(5)}  ${`${p.agentCpuMs.toFixed(0)}/${p.clientCpuMs.toFixed(0)}/${p.referenceCpuMs.toFixed(0)}`.padStart(23)}  ${String(p.logEvents).padStart(10)}`,
      ),
      `  agent           median ${agentMs.toFixed(1)} ms (${((agentMs - referenceMs) / STEPS).toFixed(3)} ms/step over the reference), 202 after ${median(pairs.map((p) => p.acceptMs)).toFixed(1)} ms`,
      `  reference       median ${referenceMs.toFixed(1)} ms`,
      `  CPU per step    agent process ${agentCpu.toFixed(0)} µs + client ${clientCpu.toFixed(0)} µs, against ${referenceCpu.toFixed(0)} µs for a reference got call (${((agentCpu + clientCpu) / referenceCpu).toFixed(2)}x; the target's CPU is in neither)`,
      `  own work        median ${fixedRatio.toFixed(2)}x against the same got calls with the agent's request-options build (${median(pairs.map((p) => p.fixedReferenceMs)).toFixed(1)} ms): what the agent adds to its own got calls`,
      `  ratio           median ${ratio.toFixed(2)}x, min ${Math.min(...ratios).toFixed(2)}x, max ${Math.max(...ratios).toFixed(2)}x (target <= ${TARGET.toFixed(2)}x) ${ratio <= TARGET ? 'OK' : 'MISSED'}`,
      `  load average    ${load0} before, ${loadAverage()} after`,
    ];
    return lines.join('\n');
  } finally {
    await agent?.stop();
    target.proc.kill();
  }
}
