/**
 * The Flow Manager's container commands (FlowRunner workers on Kubernetes), with their rules: the role
 * each needs, the schema of its input, the seed's event each answers with. Surfaces (Socket.IO) check
 * the input against `schema`, then call `run` with the caller's Principal. Watching the workers starts
 * with the first listener and stops with the last.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { AgentError } from '../../../../adapters/errors.js';
import {
  CreateWorkerInput,
  SendMessageInput,
  StartWorkerInput,
  UpdateWorkerInput,
  WorkerRef,
} from '../../../../adapters/k8s/workers/inputs.js';
import type { WorkerFleet } from '../../../../adapters/k8s/workers/fleet.js';
import { type MonitorEvent, WorkerMonitor } from '../../../../adapters/k8s/workers/monitor.js';
import { containerErrorOf } from '../../../../adapters/k8s/workers/errors.js';
import { authorize, may, type Operation, type Principal } from '../auth/roles.js';

type Signal = { signal: AbortSignal };

interface ContainerCommand {
  schema: TSchema;
  /** The operation (auth/roles.ts) whose role the command needs. */
  op: Operation;
  /** The seed's event that reports the outcome. */
  event: string;
  run(fleet: WorkerFleet, ctx: Signal, input: never, caller: Caller): Promise<Record<string, unknown>>;
}

/** What a command may show its caller beyond its role's minimum. */
interface Caller {
  /** May see the workers' own flow numbers and configuration (operators). */
  seesFlows: boolean;
}

const command = <I>(
  c: Omit<ContainerCommand, 'run'> & {
    run(fleet: WorkerFleet, ctx: Signal, input: I, caller: Caller): Promise<Record<string, unknown>>;
  },
) => c as ContainerCommand;

/** Every container command: name → schema, role, event, work. */
export const CONTAINER_COMMANDS = {
  create_container: command<CreateWorkerInput>({
    schema: CreateWorkerInput,
    op: 'workers_admin',
    event: 'container_created',
    run: async (fleet, ctx, input) => ({ ...(await fleet.create(ctx, input)) }),
  }),
  start_container: command<StartWorkerInput>({
    schema: StartWorkerInput,
    op: 'workers',
    event: 'container_started',
    run: async (fleet, ctx, input) => ({ ...(await fleet.start(ctx, input)) }),
  }),
  stop_container: command<WorkerRef>({
    schema: WorkerRef,
    op: 'workers',
    event: 'container_stopped',
    run: async (fleet, ctx, input) => ({ ...(await fleet.stop(ctx, input)) }),
  }),
  restart_container: command<WorkerRef>({
    schema: WorkerRef,
    op: 'workers',
    event: 'container_restarted',
    run: async (fleet, ctx, input) => ({ ...(await fleet.restart(ctx, input)) }),
  }),
  update_container: command<UpdateWorkerInput>({
    schema: UpdateWorkerInput,
    op: 'workers_admin',
    event: 'container_updated',
    run: async (fleet, ctx, input) => ({ ...(await fleet.update(ctx, input)) }),
  }),
  delete_container: command<WorkerRef>({
    schema: WorkerRef,
    op: 'workers_admin',
    event: 'container_deleted',
    run: async (fleet, ctx, input) => ({ ...(await fleet.remove(ctx, input)) }),
  }),
  get_container_status: command<WorkerRef>({
    schema: WorkerRef,
    op: 'read',
    event: 'container_status',
    run: async (fleet, ctx, input, caller) => ({ ...(await fleet.status(ctx, input, { flows: caller.seesFlows })) }),
  }),
  list_containers: command<Record<string, never>>({
    schema: Type.Object({}, { additionalProperties: false }),
    op: 'read',
    event: 'container_list',
    run: async (fleet, ctx) => {
      const containers = (await fleet.list(ctx)).map((w) => ({ id: w.container_id, ...w }));
      return { containers };
    },
  }),
  send_message: command<SendMessageInput>({
    schema: SendMessageInput,
    op: 'workers',
    event: 'message_received',
    run: async (fleet, ctx, input) => {
      const answers = await fleet.send(ctx, input);
      // `data` as the seed's clients read it: the one pod's answer, or every pod's.
      const data = answers.length === 1 ? answers[0].body : answers;
      return { container_id: input.container_id, message: { command: input.message.command, data, answers } };
    },
  }),
} satisfies Record<string, ContainerCommand>;

export type ContainerCommandName = keyof typeof CONTAINER_COMMANDS;

export interface ContainerServiceOptions {
  healthWarningMs: number;
  statusIntervalMs: number;
  /** How long one command may take (a start waits for its pods). */
  commandTimeoutMs: number;
  onWatchError?: (err: unknown) => void;
}

export class ContainerService {
  private readonly listeners = new Set<(e: MonitorEvent) => void>();
  private readonly monitor: WorkerMonitor;
  private readonly stopping = new AbortController();

  constructor(
    readonly fleet: WorkerFleet,
    private readonly options: ContainerServiceOptions,
  ) {
    this.monitor = new WorkerMonitor(fleet, (e) => this.broadcast(e), options, options.onWatchError);
  }

  isCommand(name: string): name is ContainerCommandName {
    return Object.hasOwn(CONTAINER_COMMANDS, name);
  }

  /** Runs a command whose input has passed its schema; throws forbidden when the caller's role is short. */
  async run(actor: Principal, name: ContainerCommandName, input: unknown): Promise<Record<string, unknown>> {
    const c: ContainerCommand = CONTAINER_COMMANDS[name];
    authorize(actor, c.op, name);
    if (this.stopping.signal.aborted) throw new AgentError('interrupted', 'the agent is shutting down');
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.options.commandTimeoutMs)]);
    try {
      return await c.run(this.fleet, { signal }, input as never, { seesFlows: may(actor, 'workers') });
    } catch (err) {
      // What the fleet (or the API server) says gets its container error name; a refusal above keeps its own type.
      if (err instanceof AgentError) err.details.container_error ??= containerErrorOf(err);
      throw err;
    }
  }

  /**
   * A distributed run asked for over the channel: it scales, starts and stops workers, so it needs what
   * start_container and send_message need (the workers operation), besides submitting.
   */
  authorizeDistributedRun(actor: Principal): void {
    authorize(actor, 'workers', 'run_distributed');
  }

  /** Listens to the workers' events (the watch runs while anyone listens); returns the function that stops. */
  listen(listener: (e: MonitorEvent) => void): () => void {
    if (this.stopping.signal.aborted) return () => {};
    this.listeners.add(listener);
    this.monitor.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.monitor.stop();
    };
  }

  close(): void {
    this.stopping.abort(new AgentError('interrupted', 'the agent is shutting down'));
    this.monitor.stop();
    this.listeners.clear();
  }

  private broadcast(e: MonitorEvent): void {
    for (const l of this.listeners) l(e);
  }
}
