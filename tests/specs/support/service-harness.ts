/**
 * The whole agent built in-process (createAgent: store, engine, service, Koa app that does not listen), for
 * specs that drive the service layer directly, without HTTP: the built-in adapters, the fake adapter of the
 * engine harness, and any adapters a spec adds.
 */
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import type { Adapter } from '../../../adapters/contract.js';
import { builtinAdapters } from '../../../adapters/index.js';
import { type Agent, adapterSettings, createAgent } from '../../../services/runtime-agent/src/app.js';
import type { Principal } from '../../../services/runtime-agent/src/auth/roles.js';
import { loadConfig } from '../../../services/runtime-agent/src/config.js';
import { TERMINAL_STATUSES } from '../../../services/runtime-agent/src/store/types.js';
import { type Call, fakeAdapter } from '../engine/harness.js';
import { freshDataDir } from './agent-process.js';
import { waitFor } from './wait.js';

export const ACTORS = {
  viewer: { name: 'vera', role: 'viewer' },
  alice: { name: 'alice', role: 'executor' },
  bob: { name: 'bob', role: 'executor' },
  operator: { name: 'olga', role: 'operator' },
  admin: { name: 'adam', role: 'admin' },
} satisfies Record<string, Principal>;

export interface ServiceHarness {
  agent: Agent;
  calls: Call[];
  dir: string;
  /** Resolves with the record once the execution reached a terminal status and its work here ended. */
  settled(id: string): Promise<ReturnType<Agent['service']['get']>>;
  /** Shuts the agent down as a SIGTERM would and starts a new one on the same store (`agent` is the new one). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startService(options: { adapters?: Adapter[]; env?: Record<string, string> } = {}) {
  const dir = freshDataDir();
  const calls: Call[] = [];
  const config = loadConfig({ DATA_DIR: dir, PORT: '0', SHUTDOWN_GRACE_SECONDS: '1', ...options.env }, []);
  const adapters = [...builtinAdapters(adapterSettings(config)), fakeAdapter(calls), ...(options.adapters ?? [])];
  const start = async () => {
    const agent = createAgent(config, pino({ level: 'silent' }), adapters);
    await agent.engine.recover();
    return agent;
  };
  const h: ServiceHarness = {
    agent: await start(),
    calls,
    dir,
    settled: (id) =>
      waitFor(() => {
        const rec = h.agent.service.get(ACTORS.admin, id);
        return TERMINAL_STATUSES.has(rec.status) && !h.agent.engine.isLive(id) ? rec : undefined;
      }, `execution ${id} to end`),
    async restart() {
      await h.agent.shutdown();
      h.agent.store.close();
      h.agent = await start();
    },
    async close() {
      await h.agent.shutdown();
      h.agent.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}
