/**
 * One handler for every client event: finds the command, checks its payload (every problem at once),
 * runs it, and answers through the acknowledgement, with the named event on success and an `error` event
 * on failure. A bad command never ends the connection.
 */
import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import { AgentError, type Problem, ValidationError } from '../../../../adapters/errors.js';
import { toProblems } from '../wpk/ajv.js';
import { type Ack, type ErrorBody, errorBody } from './answers.js';
import type { SocketAudit } from './audit.js';
import { depthProblem, tooDeep } from './payload.js';
import type { CommandContext, CommandRegistry } from './registry.js';

export interface DispatchDeps {
  commands: CommandRegistry;
  logger: Logger;
  audit: SocketAudit;
  maxJsonDepth: number;
  /** The context of a command sent on `socket` (its principal as the tokens file says now). */
  context(socket: Socket): Omit<CommandContext, 'afterAnswer'>;
}

type AckFn = (answer: Ack) => void;

/** Listens for every event the client sends on `socket`. */
export function dispatchCommands(socket: Socket, deps: DispatchDeps): void {
  socket.onAny((name: string, ...args: unknown[]) => {
    const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as AckFn) : undefined;
    run(socket, deps, name, args, ack).catch((err: unknown) =>
      deps.logger.error({ err, command: String(name).slice(0, 100) }, 'a socket command failed past its answer'),
    );
  });
}

async function run(socket: Socket, deps: DispatchDeps, name: string, args: unknown[], ack?: AckFn): Promise<void> {
  const after: Array<() => void> = [];
  const ctx: CommandContext = { ...deps.context(socket), afterAnswer: (fn) => void after.push(fn) };
  try {
    await answer(socket, deps, ctx, name, args, ack);
  } finally {
    for (const fn of after) fn();
  }
}

async function answer(
  socket: Socket,
  deps: DispatchDeps,
  ctx: CommandContext,
  name: string,
  args: unknown[],
  ack?: AckFn,
): Promise<void> {
  const fail = (err: unknown) => {
    const error: ErrorBody = errorBody(err, name, deps.logger, (e) => command?.spec.errorType?.(e));
    ack?.({ ok: false, error });
    ctx.emit('error', error);
    return error;
  };
  const command = deps.commands.get(name);
  if (!command) {
    fail(
      new AgentError('validation_error', `unknown command ${name}; known: ${deps.commands.names().join(', ')}`, {
        details: { command: String(name).slice(0, 100) },
      }),
    );
    return;
  }
  const { spec, check } = command;
  const problems: Problem[] = [];
  if (!ack && !spec.ackOptional)
    problems.push({ path: 'ack', message: 'send the command with an acknowledgement callback for its answer' });
  if (args.length > 1) problems.push({ path: '$', message: `takes one payload object; got ${args.length} arguments` });
  const payload = args.length === 0 ? {} : args[0];
  const deep = tooDeep(payload, deps.maxJsonDepth);
  if (deep !== undefined) problems.push(depthProblem(deep, deps.maxJsonDepth));
  else if (!check(payload)) problems.push(...toProblems(check.errors));
  if (problems.length) {
    const error = fail(new ValidationError(`invalid ${name} command: ${problems.length} problem(s)`, problems));
    if (spec.mutates) audit(socket, deps, ctx, name, error, payload);
    return;
  }
  let result: Record<string, unknown>;
  try {
    result = await spec.handle(ctx, payload as never);
  } catch (err) {
    const error = fail(err);
    if (spec.mutates || error.error_type === 'forbidden' || error.error_type === 'unauthorized')
      audit(socket, deps, ctx, name, error, payload);
    return;
  }
  ack?.({ ...result, ok: true });
  if (spec.event) ctx.emit(spec.event, result);
  if (spec.mutates) audit(socket, deps, ctx, name, result, payload);
}

/** An audit line; a failure to write it (a full disk) is logged, and the command's answer stands. */
function audit(
  socket: Socket,
  deps: DispatchDeps,
  ctx: CommandContext,
  name: string,
  outcome: unknown,
  payload: unknown,
) {
  try {
    deps.audit.command(socket, ctx.principal, name, outcome as never, payload);
  } catch (err) {
    deps.logger.error({ err, command: name }, 'the audit line of a socket command could not be written');
  }
}
