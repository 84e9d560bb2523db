/** The commands the channel serves from the start; other modules register theirs on `SocketChannel.commands`. */
import type { AgentService } from '../../service/agent-service.js';
import type { Subscriptions } from '../subscriptions.js';
import { executionCommands } from './executions.js';
import { subscriptionCommands } from './subscriptions.js';

export function builtinCommands(service: AgentService, subscriptions: Subscriptions) {
  return [...executionCommands(service), ...subscriptionCommands(subscriptions)];
}
