/** createAgent wires store -> adapters -> engine -> Koa app; nothing here listens on a port. */
import { hostname } from 'node:os';
import Koa from 'koa';
import type { Logger } from 'pino';
import type { Adapter } from '../../../adapters/contract.js';
import { FlowControl, type FlowLog } from '../../../adapters/flowrunner/control.js';
import { ContainerControl } from '../../../adapters/flowrunner/container/container-control.js';
import { BackgroundRuns } from '../../../adapters/flowrunner/runs.js';
import { SystemSampler } from '../../../adapters/flowrunner/system.js';
import { availableCores } from '../../../adapters/flowrunner/engine/threads.js';
import { threadPool } from '../../../adapters/flowrunner/engine/thread-pool.js';
import { builtinAdapters, type AdapterSettings } from '../../../adapters/index.js';
import { EgressPolicy } from '../../../adapters/shared/egress.js';
import { AdapterRegistry } from './adapter-registry.js';
import { ConfigError, fsProblem, type Config } from './config.js';
import { readControlConfig } from './config-files.js';
import { callbackSender } from './delivery/callback-sender.js';
import { readDeliveryKey } from './delivery/signature.js';
import { DeliveryWorker } from './delivery/worker.js';
import { Engine } from './engine/engine.js';
import { auditMiddleware } from './http/audit.js';
import { authenticate } from './http/auth.js';
import { browserGuard } from './http/browser-guard.js';
import { Retention } from './engine/retention.js';
import { errorMiddleware } from './http/errors.js';
import { apiErrorMiddleware } from './http/flowrunner-api.js';
import { buildRouter } from './http/routes/index.js';
import { AgentService } from './service/agent-service.js';
import { Tokens, TokensFileError } from './auth/tokens.js';
import { Metrics } from './metrics.js';
import { SseStreams } from './http/sse.js';
import { VERSION, WORKFLOWS_DIR } from './paths.js';
import { managerLabel } from '../../../adapters/k8s/workers/labels.js';
import type { WorkerFleet } from '../../../adapters/k8s/workers/fleet.js';
import { ContainerService } from './service/containers.js';
import { registerContainerCommands } from './socket/commands/containers.js';
import { Puller } from './pull/puller.js';
import { SocketChannel } from './socket/channel.js';
import { reportSender } from './pull/report-sender.js';
import { MANAGER_ACTOR, managerClient } from './pull/setup.js';
import { Store } from './store/store.js';
import type { BackgroundProcess, Delivery, DeliveryState } from './store/types.js';
import type { AttemptResult } from './delivery/callback-sender.js';
import { maskUrl } from './delivery/targets.js';
import { Catalog } from './wpk/catalog.js';
import { SignatureVerifier } from './wpk/signature.js';
import { PackageValidator } from './wpk/validate.js';

export interface Agent {
  app: Koa;
  /** Every operation of every surface. */
  service: AgentService;
  store: Store;
  engine: Engine;
  catalog: Catalog;
  registry: AdapterRegistry;
  /** The flow of the FlowRunner control API (`/api/*`). */
  flows: FlowControl;
  /** The bearer tokens in force; undefined when auth is off. */
  tokens?: Tokens;
  /** Pruning of ended executions; main starts it once recovery is done. */
  retention: Retention;
  /** The delivery of results from the outbox; main starts it once recovery is done. */
  delivery: DeliveryWorker;
  /** Pull mode (MANAGER_URL): main starts it once recovery is done. */
  puller?: Puller;
  /** The Flow Manager's container commands (FlowRunner workers on Kubernetes), when the flowrunner adapter has a fleet. */
  containers?: ContainerService;
  /** The Socket.IO channel; main attaches it to the server it listens on. */
  sockets: SocketChannel;
  /** SIGTERM: flows stop at once, executions drain (see Engine.shutdown). */
  shutdown(): Promise<void>;
}

/** FLOWRUNNER_THREADS: a number, or (`auto`, the default) the cores this process may use. */
function flowrunnerThreads(config: Config): number {
  const threads = config.flowrunnerThreads ?? 'auto';
  return threads === 'auto' ? availableCores() : threads;
}

/**
 * The adapters' part of the configuration. With the logger, the flowrunner adapter gets the container control
 * of FLOWRUNNER_CONTROL_CONFIG too (read from its file here), which createAgent shares with the control API.
 */
export function adapterSettings(config: Config, logger?: Logger): AdapterSettings {
  return {
    flowrunner: {
      flowmapsRoot: WORKFLOWS_DIR,
      log: logger ? flowRunnerLog(logger) : undefined,
      threads: flowrunnerThreads(config),
      container: logger ? containerControl(config, logger) : undefined,
    },
    shell: {
      allowShell: config.shellAllowShell,
      allowedExecutables: config.shellAllowedExecutables,
      workRoot: config.shellWorkRoot,
    },
    egress: {
      allowLoopback: config.egressAllowLoopback,
      allowPrivate: config.egressAllowPrivate,
      allowedHosts: config.egressAllowedHosts,
    },
    k8s: {
      serviceAccountDir: config.k8sServiceAccountDir,
      kubeconfig: config.kubeconfig,
      server: config.k8sServer,
      token: config.k8sToken,
      tokenFile: config.k8sTokenFile,
      caFile: config.k8sCaFile,
      namespace: config.k8sNamespace,
    },
    workers: {
      namespace: config.flowWorkersNamespace,
      image: config.flowWorkerImage,
      controlPort: config.flowWorkerPort,
      manager: managerLabel(config.agentName ?? config.podName ?? 'runtime-agent'),
      readyTimeoutMs: config.flowWorkerReadyTimeoutSeconds * 1000,
      requestTimeoutMs: config.flowWorkerRequestTimeoutMs,
    },
  };
}

export function createAgent(
  config: Config,
  logger: Logger,
  adapters: Adapter[] = builtinAdapters(adapterSettings(config, logger)),
): Agent {
  // Read before the store opens: a broken tokens file stops the start with nothing touched.
  const tokens = config.tokensFile ? loadTokens(config.tokensFile, logger) : undefined;
  const signatures = new SignatureVerifier({
    hmacKeyFile: config.wpkHmacKeyFile,
    ed25519PublicKeyFile: config.wpkEd25519PublicKeyFile,
  });
  const callbackEgress = new EgressPolicy(adapterSettings(config).egress);
  const callbackKey = config.resultCallbackHmacKeyFile ? loadCallbackKey(config) : undefined;
  if (config.resultCallbackUrl) checkCallbackUrl(config, callbackEgress);
  const manager = managerClient(config);
  const store = new Store(config.dataDir, { synchronous: config.storeSynchronous });
  store.onDeferredError = (err) =>
    logger.error({ err }, 'a deferred store write (log line or progress counter) or an event subscriber failed');
  const registry = new AdapterRegistry(adapters);
  const validator = new PackageValidator(registry, { maxJsonDepth: config.maxJsonDepth });
  const catalog = new Catalog(store, validator, WORKFLOWS_DIR);
  for (const p of catalog.problems)
    logger.error({ file: p.file, errors: p.errors }, 'bundled workflow is invalid and was skipped');
  const metrics = new Metrics(VERSION);
  const engine = new Engine(store, registry, metrics, {
    maxConcurrent: config.maxConcurrentExecutions,
    maxQueued: config.maxQueuedExecutions,
    shutdownGraceMs: config.shutdownGraceSeconds * 1000,
    logLimits: { maxLines: config.maxLogLinesPerExecution, maxBytes: config.maxLogBytesPerExecution },
    maxOutputBytes: config.maxOutputBytes,
    results: {
      events: config.resultCallbackEvents,
      url: config.resultCallbackUrl,
      reportUrl: manager && ((taskId) => manager.reportUrl(taskId)),
    },
  });
  const delivery = new DeliveryWorker(
    store.outbox,
    {
      callback: callbackSender({
        egress: callbackEgress,
        hmacKey: callbackKey,
        timeoutMs: config.resultCallbackTimeoutMs,
        userAgent: `runtime-agent/${VERSION}`,
      }),
      ...(manager && { report: reportSender(manager) }),
    },
    {
      maxAgeMs: config.resultCallbackMaxAgeSeconds * 1000,
      baseDelayMs: config.resultCallbackRetryBaseMs,
      maxDelayMs: MAX_CALLBACK_BACKOFF_MS,
      // The lease of an attempt covers the longest one: a report waits up to MANAGER_REQUEST_TIMEOUT_MS.
      timeoutMs: Math.max(config.resultCallbackTimeoutMs, manager ? config.managerRequestTimeoutMs : 0),
      concurrency: CALLBACKS_AT_ONCE,
    },
    deliveryHooks(logger, metrics),
  );
  metrics.attachOutbox(() => ({
    callback: store.outbox.backlog('callback'),
    ...(manager && { report: store.outbox.backlog('report') }),
  }));
  const retention = new Retention(
    { store, isLive: (id) => engine.isLive(id), metrics, logger },
    {
      maxAgeDays: config.retentionMaxAgeDays,
      maxExecutions: config.retentionMaxExecutions,
      intervalSeconds: config.retentionIntervalSeconds,
    },
  );
  engine.bus.on('internal_error', (err) => logger.error({ err }, 'engine task failed unexpectedly'));
  engine.bus.on('background_started', (p: BackgroundProcess) => {
    const task = store.executions.get(p.executionId)?.task;
    logger.info(
      { execution_id: p.executionId, ...(task && { task_id: task.id }), step: p.step, pid: p.pid },
      'a step left a process running',
    );
  });
  // One container control for every flow: the control API's and the flowrunner steps' (one holds it at a time).
  const container =
    adapters.find((a): a is Adapter & { container: ContainerControl } => 'container' in a && a.container !== undefined)
      ?.container ?? containerControl(config, logger);
  const flows = new FlowControl({
    log: flowRunnerLog(logger),
    egress: adapterSettings(config).egress,
    container,
    threads: flowrunnerThreads(config),
  });
  const system = new SystemSampler();
  metrics.attachFlowRunner({
    appStatus: () => flows.appStatus,
    live: () => flows.live(),
    totals: () => flows.totals(),
    container: () => ({ cpu_percent: system.containerCpuPercent(), memory_percent: system.memory().memory_percent }),
  });
  // Flows (the control API's and the adapter's background runs) are load to stop, not work to finish:
  // they stop at once, while workflow executions get their grace period.
  const backgroundRuns = adapters.flatMap((a) => ('runs' in a && a.runs instanceof BackgroundRuns ? [a.runs] : []));
  let puller: Puller | undefined;
  const fleet = adapters.find(
    (a): a is Adapter & { fleet: WorkerFleet } => 'fleet' in a && a.fleet !== undefined,
  )?.fleet;
  const containers =
    fleet &&
    new ContainerService(fleet, {
      healthWarningMs: config.flowWorkerHealthWarningSeconds * 1000,
      statusIntervalMs: config.flowWorkerStatusIntervalSeconds * 1000,
      commandTimeoutMs: config.flowWorkerReadyTimeoutSeconds * 1000 + COMMAND_GRACE_MS,
      onWatchError: (err) => logger.warn({ err }, 'watching the FlowRunner workers failed; trying again'),
    });
  const shutdown = async () => {
    tokens?.stop();
    containers?.close();
    // No new task is claimed; the running ones drain with the other executions, and their reports go out below.
    await puller?.stop();
    await Promise.all([
      retention.stop(),
      flows.shutdown(),
      ...backgroundRuns.map((r) => r.stopAll()),
      engine.shutdown(),
    ]);
    // Every flow has stopped: the threads they ran on go too.
    await threadPool.close();
    // After the executions: their last results are in the outbox by now, and get a moment to go out.
    await delivery.stop(Math.min(DELIVERY_STOP_GRACE_MS, config.shutdownGraceSeconds * 1000));
    await puller?.deregister();
    metrics.close();
  };
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  app.context.maxJsonDepth = config.maxJsonDepth; // read by every body reader (http/body.ts)
  const service = new AgentService({
    store,
    engine,
    registry,
    validator,
    catalog,
    metrics,
    signatures,
    version: VERSION,
    startedAt: Date.now(),
    metricsAuth: config.metricsAuth,
    callbackEgress,
    managerOnly: config.managerOnly,
    pullMode: manager !== undefined,
    pod: config.podName ? { name: config.podName, namespace: config.podNamespace || null } : undefined,
  });
  const eventStreams = new SseStreams();
  metrics.addJournalConsumer('sse', eventStreams);
  metrics.attachAgent({
    adaptersReady: () => service.adaptersReady(),
    storeBytes: () => store.bytes(),
    journalSeq: () => store.journal.lastSeq(),
  });
  const router = buildRouter({
    service,
    tokens,
    bodyLimitBytes: config.bodyLimitBytes,
    flows,
    system,
    eventStreams,
  });
  app.use((_ctx, next) => {
    engine.noteApiRequest();
    return next();
  });
  app.use(auditMiddleware(store));
  app.use(errorMiddleware(logger));
  app.use(apiErrorMiddleware(logger));
  // Without tokens, and unless told --insecure-no-auth, the agent is on loopback: only loopback names are answered.
  app.use(browserGuard({ loopbackHostsOnly: !tokens && !config.insecureNoAuth }));
  app.use(authenticate(tokens));
  app.use(router.routes());
  app.use(router.allowedMethods());
  const sockets = new SocketChannel({
    service,
    store,
    tokens,
    logger,
    metrics,
    version: VERSION,
    agentName: config.agentName ?? hostname(),
    loopbackHostsOnly: !tokens && !config.insecureNoAuth,
    maxMessageBytes: config.bodyLimitBytes,
    maxJsonDepth: config.maxJsonDepth,
  });
  if (containers) registerContainerCommands(sockets, containers, service);
  tokens?.watch(config.tokensReloadSeconds * 1000);
  puller =
    manager &&
    new Puller({
      client: manager,
      service,
      store,
      logger,
      actor: MANAGER_ACTOR,
      maxConcurrent: config.maxConcurrentExecutions,
      activeCount: () => engine.activeCount + engine.queuedCount,
      version: VERSION,
      adapters: registry.names(),
      registerTimeoutMs: config.managerRegisterTimeoutSeconds * 1000,
      rejectTask: (taskId, error) => engine.results.taskRejected(taskId, error),
    });
  return {
    app,
    service,
    store,
    engine,
    catalog,
    registry,
    flows,
    tokens,
    retention,
    delivery,
    puller,
    containers,
    sockets,
    shutdown,
  };
}

/** A container command may take this much longer than the wait for its pods. */
const COMMAND_GRACE_MS = 30_000;

/** The longest wait between two attempts of a callback. */
const MAX_CALLBACK_BACKOFF_MS = 5 * 60_000;
/** Callback attempts under way at once. */
const CALLBACKS_AT_ONCE = 8;
/** On shutdown, how long an attempt under way may finish before it is aborted (and retried after the restart). */
const DELIVERY_STOP_GRACE_MS = 2000;

function loadCallbackKey(config: Config): Buffer {
  const file = config.resultCallbackHmacKeyFile!;
  try {
    return readDeliveryKey(file, (err) => fsProblem(file, err));
  } catch (err) {
    throw new ConfigError(
      config.sources?.resultCallbackHmacKeyFile ?? 'RESULT_CALLBACK_HMAC_KEY_FILE',
      (err as Error).message,
    );
  }
}

/** RESULT_CALLBACK_URL's host must be one the egress policy lets the agent reach (its addresses are judged per attempt). */
function checkCallbackUrl(config: Config, egress: EgressPolicy): void {
  try {
    egress.checkHost(new URL(config.resultCallbackUrl!).hostname);
  } catch (err) {
    throw new ConfigError(config.sources?.resultCallbackUrl ?? 'RESULT_CALLBACK_URL', (err as Error).message);
  }
}

/** Each attempt counted; what was given up, logged (the URL masked: it may hold a credential). */
function deliveryHooks(logger: Logger, metrics: Metrics) {
  const log = logger.child({ component: 'delivery' });
  return {
    attempted(d: Delivery, result: AttemptResult | undefined, state: DeliveryState) {
      metrics.deliveryAttempted(d.kind, result?.outcome ?? 'expired', state === 'dead');
      const fields = {
        kind: d.kind,
        delivery_id: d.deliveryId,
        execution_id: d.executionId,
        event: d.event,
        url: maskUrl(d.target),
      };
      if (state === 'delivered' && d.kind === 'report') log.info(fields, "task's report delivered to the Manager");
      else if (state === 'dead') log.warn({ ...fields, error: result?.error }, 'result delivery given up (dead)');
      else if (state === 'gone') log.info({ ...fields, status: result?.status }, 'the receiver wants no more attempts');
      else if (state === 'pending') log.debug({ ...fields, error: result?.error }, 'result delivery failed; retrying');
    },
    failed(err: unknown) {
      log.error({ err }, 'the delivery loop failed; it goes on');
    },
  };
}

function loadTokens(file: string, logger: Logger): Tokens {
  try {
    return new Tokens(file, (e) =>
      e.ok ? logger.info({ tokens: e.count }, 'tokens file changed; reloaded') : logger.error(e.error),
    );
  } catch (err) {
    if (err instanceof TokensFileError) throw new ConfigError('RUNTIME_AGENT_TOKENS_FILE', err.message);
    throw err;
  }
}

/**
 * The flow runner's log lines into the agent's log. Its debug lines come only when the flow's config has
 * `debug: true`, and then they show even when the agent logs at info.
 */
function flowRunnerLog(logger: Logger): FlowLog {
  const log = logger.child({ component: 'flowrunner' });
  const debug =
    logger.isLevelEnabled('debug') || logger.level === 'silent'
      ? log
      : logger.child({ component: 'flowrunner' }, { level: 'debug' });
  return (level, message) => (level === 'debug' ? debug.debug(message) : log[level](message));
}

/** The container control of FLOWRUNNER_CONTROL_CONFIG (checked at start by checkConfigFiles); none without it. */
function containerControl(config: Config, logger: Logger): ContainerControl | undefined {
  const file = config.flowRunnerControlConfig;
  if (!file) return undefined;
  const { settings, ignored } = readControlConfig(
    file,
    config.sources?.flowRunnerControlConfig ?? 'FLOWRUNNER_CONTROL_CONFIG',
  );
  if (ignored.length)
    logger.warn(
      { file, ignored },
      `${file}: ${ignored.join(' and ')} ${ignored.length > 1 ? 'are' : 'is'} ignored: the agent runs FlowRunner itself`,
    );
  return new ContainerControl(settings, flowRunnerLog(logger));
}
