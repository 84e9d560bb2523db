/**
 * The Flow Manager's container commands over the channel, in the seed's names and shapes: each checks its
 * payload, calls the container service with the caller's Principal, answers through the acknowledgement
 * when there is one (the seed's clients send none and listen for the named event), and names failures with
 * the seed's error types. The workers' watch runs while any socket is connected; its events go to all.
 */
import type { AgentError } from '../../../../../adapters/errors.js';
import { CONTAINER_COMMANDS, type ContainerCommandName, type ContainerService } from '../../service/containers.js';
import type { SocketChannel } from '../channel.js';
import { Type } from '@sinclair/typebox';
import { DEFAULT_WORKER } from '../../../../../adapters/flowrunner/distributed.js';
import type { Principal } from '../../auth/roles.js';
import type { AgentService } from '../../service/agent-service.js';
import { type ExecutionStatus, TERMINAL_STATUSES } from '../../store/types.js';
import { defineCommand } from '../registry.js';

/** Read-only commands are not audited. */
const READS = new Set<string>(['get_container_status', 'list_containers']);

export function registerContainerCommands(
  channel: SocketChannel,
  containers: ContainerService,
  service: AgentService,
): void {
  for (const name of Object.keys(CONTAINER_COMMANDS) as ContainerCommandName[]) {
    const c = CONTAINER_COMMANDS[name];
    channel.commands.register(
      defineCommand({
        name,
        payload: c.schema,
        event: c.event,
        mutates: !READS.has(name),
        ackOptional: true,
        errorType: (err: AgentError) => {
          const tagged = err.details.container_error;
          return typeof tagged === 'string' ? tagged : undefined;
        },
        async handle(ctx, payload) {
          // The seed's message_sent goes out before the worker answers (message_received is the command's event).
          if (name === 'send_message') ctx.emit('message_sent', { ...(payload as object) });
          return containers.run(ctx.principal, name, payload);
        },
      }),
    );
  }
  channel.commands.register(runDistributedCommand(channel, service, containers));
  channel.whileConnected(() => containers.listen((e) => channel.broadcast(e.event, e.data)));
}

/** The bundled workflow a run_distributed command submits. */
export const DISTRIBUTED_WORKFLOW = 'distributed-load-1.0.0';

const RunDistributedPayload = Type.Object(
  {
    target_url: Type.String({ minLength: 1 }),
    flowmap: Type.Optional(Type.String({ minLength: 1, description: 'A flowmap bundled under workflows/' })),
    sim_users: Type.Integer({ minimum: 1 }),
    workers: Type.Integer({ minimum: 1 }),
    duration_seconds: Type.Integer({ minimum: 1 }),
    ramp_up_seconds: Type.Optional(Type.Number({ minimum: 0 })),
    worker: Type.Optional(Type.String({ minLength: 1 })),
    max_error_rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    max_p95_ms: Type.Optional(Type.Number({ minimum: 1 })),
    dry_run: Type.Optional(Type.Boolean()),
    idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  },
  { additionalProperties: false },
);

/**
 * run_distributed: an execution of the bundled distributed-load workflow (so it is journaled, cancellable
 * and rolled back like any other), answered with its id; while it runs, each of its fleet reports is
 * broadcast as container_status_update with the worker's id.
 */
function runDistributedCommand(channel: SocketChannel, service: AgentService, containers: ContainerService) {
  return defineCommand({
    name: 'run_distributed',
    payload: RunDistributedPayload,
    mutates: true,
    ackOptional: true,
    event: 'distributed_run_started',
    async handle(ctx, p) {
      containers.authorizeDistributedRun(ctx.principal);
      const parameters: Record<string, unknown> = {
        targetUrl: p.target_url,
        users: p.sim_users,
        workers: p.workers,
        durationSeconds: p.duration_seconds,
      };
      if (p.flowmap !== undefined) parameters.flowmap = p.flowmap;
      if (p.ramp_up_seconds !== undefined) parameters.rampUpSeconds = p.ramp_up_seconds;
      if (p.worker !== undefined) parameters.worker = p.worker;
      if (p.max_error_rate !== undefined) parameters.maxErrorRate = p.max_error_rate;
      if (p.max_p95_ms !== undefined) parameters.maxP95Ms = p.max_p95_ms;
      const request = { workflow_id: DISTRIBUTED_WORKFLOW, parameters, dry_run: p.dry_run };
      const { created, execution } = await service.submit(ctx.principal, request, {
        idempotencyKey: p.idempotency_key,
        requestText: JSON.stringify(request),
      });
      const worker = (p.worker ?? DEFAULT_WORKER) as string;
      if (created) relayFleetReports(channel, service, ctx.principal, execution.execution_id, worker);
      return { created, execution_id: execution.execution_id, status: execution.status, container_id: worker };
    },
  });
}

/** Broadcasts the execution's step.progress fleet numbers as container_status_update until it ends. */
function relayFleetReports(
  channel: SocketChannel,
  service: AgentService,
  actor: Principal,
  executionId: string,
  worker: string,
) {
  let stop = () => {};
  let ended = false;
  stop = service.followEvents(
    actor,
    { execution_id: executionId, types: ['step.progress', 'execution.status_changed'] },
    () => (e) => {
      if (e.type === 'step.progress' && e.data.fleet)
        channel.broadcast('container_status_update', {
          container_id: worker,
          execution_id: executionId,
          fleet: e.data.fleet,
          seq: e.seq,
        });
      if (e.type === 'execution.status_changed' && TERMINAL_STATUSES.has(e.data.to as ExecutionStatus)) {
        ended = true;
        stop();
      }
    },
  );
  if (ended) stop();
}
