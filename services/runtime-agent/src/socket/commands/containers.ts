/**
 * The Flow Manager's container commands over the channel, in the seed's names and shapes: each checks its
 * payload, calls the container service with the caller's Principal, answers through the acknowledgement
 * when there is one (the seed's clients send none and listen for the named event), and names failures with
 * the seed's error types. The workers' watch runs while any socket is connected; its events go to all.
 */
import type { AgentError } from '../../../../../adapters/errors.js';
import { CONTAINER_COMMANDS, type ContainerCommandName, type ContainerService } from '../../service/containers.js';
import type { SocketChannel } from '../channel.js';
import { defineCommand } from '../registry.js';

/** Read-only commands are not audited. */
const READS = new Set<string>(['get_container_status', 'list_containers']);

export function registerContainerCommands(channel: SocketChannel, containers: ContainerService): void {
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
  channel.whileConnected(() => containers.listen((e) => channel.broadcast(e.event, e.data)));
}
