/**
 * The Socket.IO channel's commands: a name, the payload schema it is checked against, and a handler that
 * calls the service layer with the caller's Principal. Dispatch (dispatch.ts) knows nothing of any one
 * command, so another module adds its own with `channel.commands.register(defineCommand({ ... }))`.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { Socket } from 'socket.io';
import type { AgentError } from '../../../../adapters/errors.js';
import type { Principal } from '../auth/roles.js';
import { makeAjv, type ValidateFunction } from '../wpk/ajv.js';

/** What a handler gets besides its payload. */
export interface CommandContext {
  /** Who sent the command, with the role the tokens file gives it now. */
  readonly principal: Principal;
  readonly socket: Socket;
  /** Emits a server event to the sender only. */
  emit(event: string, data: unknown): void;
  /**
   * Runs `fn` once the answer went out through the acknowledgement (success or not): events that follow
   * from the answer (a subscription's replay) reach the client after it.
   */
  afterAnswer(fn: () => void): void;
}

/**
 * One command. The handler's answer goes back through the acknowledgement as `{ ok: true, ...answer }`;
 * a throw (an AgentError, normally from the service layer's own checks) as `{ ok: false, error }` plus an
 * `error` event. Handlers are not retried and are not cancelled when the client disconnects.
 */
export interface CommandSpec<T extends TSchema = TSchema> {
  name: string;
  /** The payload's schema (TypeBox): every problem is answered as one validation_error. */
  payload: T;
  /** An event also emitted to the sender with the answer on success (the seed's named events, e.g. container_created). */
  event?: string;
  /** State-changing commands, and refused ones, go to the audit log (GET /audit). */
  mutates?: boolean;
  /**
   * A client may emit the command without an acknowledgement callback (clients that listen for `event`
   * instead). Otherwise a command without one is refused with a validation_error event.
   */
  ackOptional?: boolean;
  /**
   * The error_type the command's clients switch on for a failure, when it is not the taxonomy's own (the
   * Flow Manager's container error names); undefined keeps the taxonomy's.
   */
  errorType?(err: AgentError): string | undefined;
  handle(ctx: CommandContext, payload: Static<T>): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** A string or a list of strings, as one schema (a union would report each branch's complaint). */
export const OneOrMore = (description: string) =>
  Type.Unsafe<string | string[]>({ type: ['string', 'array'], items: { type: 'string' }, description });

/** Keeps the payload's static type attached to the handler. */
export function defineCommand<T extends TSchema>(spec: CommandSpec<T>): CommandSpec<T> {
  return spec;
}

export interface RegisteredCommand {
  spec: CommandSpec;
  check: ValidateFunction;
}

/** Names socket.io (or its clients) keep for themselves, and the server's own events. */
const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
  'error',
  'connected',
  'activity_log',
  'status_changed',
]);

const ajv = makeAjv(false);

export class CommandRegistry {
  private readonly commands = new Map<string, RegisteredCommand>();

  /** Adds commands; a name used twice, or one of the reserved event names, is a programming error. */
  register(...specs: CommandSpec<TSchema>[]): this {
    for (const spec of specs) {
      if (RESERVED.has(spec.name)) throw new Error(`socket command name ${spec.name} is reserved`);
      if (this.commands.has(spec.name)) throw new Error(`socket command ${spec.name} is registered twice`);
      this.commands.set(spec.name, { spec, check: ajv.compile(spec.payload) });
    }
    return this;
  }

  get(name: string): RegisteredCommand | undefined {
    return this.commands.get(name);
  }

  names(): string[] {
    return [...this.commands.keys()];
  }
}
