/** config -> store -> adapters -> engine -> server; SIGTERM/SIGINT drain and close. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { pino } from 'pino';
import { createAgent } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { VERSION } from './paths.js';
import { StoreLockedError } from './store/store.js';

// Packages bring their own regular expressions (parameter patterns, matches_regex conditions, FlowRunner
// conditions) and callers the text they run on: a pattern that backtracks catastrophically, such as
// ^(a+)+$, would block the event loop for hours. V8 then switches to its linear-time engine instead.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`runtime-agent: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const logger = pino({ level: config.logLevel, base: { service: 'runtime-agent' } });
if (config.insecureNoAuth && !config.tokensFile) {
  logger.warn(
    { host: config.host },
    `--insecure-no-auth: no tokens are configured, so anyone who can reach ${config.host} can run commands through this agent; use this for local experiments only`,
  );
}
let agent: ReturnType<typeof createAgent>;
try {
  agent = createAgent(config, logger);
} catch (err) {
  if (err instanceof StoreLockedError) {
    process.stderr.write(`runtime-agent: DATA_DIR ${config.dataDir}: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`runtime-agent: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const server = agent.app.listen(config.port, config.host);
server.keepAliveTimeout = 65_000;
try {
  await once(server, 'listening');
} catch (err) {
  process.stderr.write(`runtime-agent: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`);
  agent.store.close();
  process.exit(1);
}
// Recovery runs once the port is ours and before any request is read (requests need a later turn).
const recovered = await agent.engine.recover();
if (recovered.requeued || recovered.interrupted || recovered.rollbacks || recovered.orphans)
  logger.info(recovered, 'recovered executions from the store');
// Pruning only ever looks at ended executions, so it starts once recovery has settled what is still running.
agent.retention.start();
const { port } = server.address() as AddressInfo;
const auth = agent.tokens
  ? `${agent.tokens.count} token(s) from ${config.tokensFile}`
  : config.insecureNoAuth
    ? 'off (--insecure-no-auth)'
    : 'off (loopback only)';
logger.info(
  { host: config.host, port, auth, data_dir: config.dataDir, store: agent.store.path, version: VERSION },
  `runtime-agent listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info(
    { signal, grace_seconds: config.shutdownGraceSeconds },
    'shutting down: no new work, letting running steps finish',
  );
  await agent.shutdown();
  server.close();
  server.closeAllConnections();
  agent.store.close();
  logger.info('store closed; bye');
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
