/**
 * flags -> config -> the files it names -> store -> adapters -> engine -> server; SIGTERM/SIGINT drain
 * and close, a second one exits at once.
 *
 * Only node: modules are imported statically. The configuration and the files it names are checked
 * first, with light modules; the heavy ones (the Kubernetes client, the store, the HTTP stack) load
 * once the configuration is good, so a refused start is fast. Nothing at start prints a stack trace:
 * a bad setting is one line and exit code 2, any other failure to start one line and exit code 1.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Agent } from './app.js';
import type { Config } from './config.js';

// Packages bring their own regular expressions (parameter patterns, matches_regex conditions, FlowRunner
// conditions) and callers the text they run on: a pattern that backtracks catastrophically, such as
// ^(a+)+$, would block the event loop for hours. V8 then switches to its linear-time engine instead.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

/** Exit codes of a second SIGINT or SIGTERM during the drain: 128 + the signal's number, as shells report it. */
const SECOND_SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** A failure to start whose message says all there is to say (no stack trace would help). */
class StartFailure extends Error {}

/** Until the agent listens, an error from any callback also ends the start in one line. */
const onStartError = (err: unknown) => startFailed(err);
process.on('uncaughtException', onStartError);
process.on('unhandledRejection', onStartError);

try {
  await start();
} catch (err) {
  startFailed(err);
} finally {
  process.removeListener('uncaughtException', onStartError);
  process.removeListener('unhandledRejection', onStartError);
}

async function start(): Promise<void> {
  const { ConfigError, loadConfig, parseFlags } = await import('./config.js');
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help || flags.version) {
    const { VERSION } = await import('./paths.js');
    const { usage } = await import('./usage.js');
    process.stdout.write(flags.help ? usage(VERSION) : `runtime-agent ${VERSION}\n`);
    return;
  }
  const config = loadConfig();
  const { checkConfigFiles } = await import('./config-files.js');
  checkConfigFiles(config);

  const [{ default: pino }, { createAgent }, { VERSION }, { StoreLockedError }] = await Promise.all([
    import('pino'),
    import('./app.js'),
    import('./paths.js'),
    import('./store/store.js'),
  ]);
  // Synchronous: each line is written when it is logged, so nothing is left to flush at exit. An
  // asynchronous destination flushes at exit, and once nothing reads stdout any more (EPIPE) that flush
  // retries forever: neither a drained exit nor a second signal could then end the process.
  const logger = pino(
    // In pull mode every line names the agent as the Manager knows it (seed 003's log format).
    {
      level: config.logLevel,
      base: { service: 'runtime-agent', ...(config.managerUrl && { agent_name: config.agentName ?? hostname() }) },
    },
    pino.destination({ dest: 1, sync: true }),
  );
  if (config.insecureNoAuth && !config.tokensFile) {
    logger.warn(
      { host: config.host },
      `--insecure-no-auth: no tokens are configured, so anyone who can reach ${config.host} can run commands through this agent; use this for local experiments only`,
    );
  }
  let agent: Agent;
  try {
    agent = createAgent(config, logger);
  } catch (err) {
    throw err instanceof StoreLockedError ? new ConfigError(config.sources?.dataDir ?? 'DATA_DIR', err.message) : err;
  }

  const server = agent.app.listen(config.port, config.host);
  server.keepAliveTimeout = 65_000;
  agent.sockets.attach(server);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (err) {
    agent.store.close();
    throw new StartFailure(
      `cannot listen on ${config.host}:${config.port}: ${(err as Error).message}; choose another HOST or PORT, or stop what uses this one`,
    );
  }
  // Recovery runs once the port is ours. Until it is done /ready answers 503, submissions are stored and
  // wait in the queue, and cancels and rollbacks are refused with 503 (Engine.recover).
  const recovered = await agent.engine.recover();
  if (recovered.requeued || recovered.interrupted || recovered.rollbacks || recovered.orphans)
    logger.info(recovered, 'recovered executions from the store');
  // Pruning only ever looks at ended executions, so it starts once recovery has settled what is still running.
  agent.retention.start();
  // Results waiting in the outbox (from before a restart too) go out once recovery has settled the executions.
  agent.delivery.start();
  // Pull mode: registers in the background (a Manager that is down is retried); one that refuses this agent,
  // is not there, or removes it ends the agent with one line and exit code 2 or 3 (docs/pull-mode.md).
  void agent.puller?.start((code, line) => {
    logger.fatal({ exit_code: code }, line);
    process.stderr.write(`runtime-agent: ${line}\n`); // where a bad setting at start is told, too
    void agent
      .shutdown()
      .catch((err) => logger.error({ err }, 'shutdown failed'))
      .finally(() => {
        agent.sockets.close();
        server.close();
        server.closeAllConnections();
        agent.store.close();
        process.exit(code);
      });
  });
  // Before the line that says the agent listens: whoever starts the agent may signal it as soon as it
  // reads that line, and a signal without a handler ends the process without a drain.
  handleSignals(config, logger, agent, server);
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
}

/**
 * The first SIGTERM or SIGINT drains: no new work, running steps get SHUTDOWN_GRACE_SECONDS. A second
 * one exits at once; the running shell steps' process groups are killed on the way out (shell adapter),
 * and the next start recovers whatever was running as interrupted.
 */
function handleSignals(config: Config, logger: Logger, agent: Agent, server: Server): void {
  let stopping = false;
  const onSignal = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(
        { signal },
        `second ${signal}: exiting now without waiting for running steps; the next start marks them interrupted`,
      );
      process.exit(SECOND_SIGNAL_EXIT[signal] ?? 1);
    }
    stopping = true;
    logger.info(
      { signal, grace_seconds: config.shutdownGraceSeconds },
      `shutting down: no new work, letting running steps finish (send ${signal} again to exit at once)`,
    );
    await agent.shutdown();
    // After the drain: subscribers hear the running executions' last events.
    agent.sockets.close();
    server.close();
    server.closeAllConnections();
    agent.store.close();
    logger.info('store closed; bye');
    process.exit(0);
  };
  process.on('SIGTERM', (s) => void onSignal(s));
  process.on('SIGINT', (s) => void onSignal(s));
}

/**
 * One line on stderr and a non-zero exit: 2 for a bad flag or setting (a ConfigError, which the operator
 * fixes), 1 for anything else. For an unexpected error, LOG_LEVEL=debug or trace adds its stack trace.
 */
function startFailed(err: unknown): never {
  const e = err instanceof Error ? err : new Error(String(err));
  const line = (text: string) => process.stderr.write(`runtime-agent: ${text.replace(/\s*\n\s*/g, ' ').trim()}\n`);
  if (e.name === 'ConfigError') {
    line(e.message);
    process.exit(2);
  }
  if (e instanceof StartFailure) {
    line(e.message);
    process.exit(1);
  }
  const debug = ['debug', 'trace'].includes((process.env.LOG_LEVEL ?? '').trim().toLowerCase());
  line(`cannot start: ${e.name}: ${e.message}${debug ? '' : ' (LOG_LEVEL=debug shows the stack trace)'}`);
  if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}
