/** `subscribe` and `unsubscribe`: the journal as `activity_log` and `status_changed` events (../subscriptions.ts). */
import { Type } from '@sinclair/typebox';
import { AgentError } from '../../../../../adapters/errors.js';
import { EVENT_TYPES } from '../../store/types.js';
import { defineCommand, OneOrMore } from '../registry.js';
import type { Subscriptions } from '../subscriptions.js';

const SubscribePayload = Type.Object(
  {
    execution_id: Type.Optional(Type.String({ minLength: 1 })),
    workflow_id: Type.Optional(Type.String({ minLength: 1 })),
    types: Type.Optional(OneOrMore(`one or more of: ${EVENT_TYPES.join(', ')} (a list, or a comma list)`)),
    since: Type.Optional(
      Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'The last seq the client has' }),
    ),
  },
  { additionalProperties: false },
);

const UnsubscribePayload = Type.Object(
  { subscription_id: Type.Optional(Type.String({ minLength: 1 })) },
  { additionalProperties: false },
);

export function subscriptionCommands(subscriptions: Subscriptions) {
  return [
    defineCommand({
      name: 'subscribe',
      payload: SubscribePayload,
      handle(ctx, q) {
        const since = q.since ?? 0;
        const { id, release } = subscriptions.open(ctx.socket, ctx.principal, { ...q, since });
        ctx.afterAnswer(release);
        return { subscription_id: id, since };
      },
    }),
    defineCommand({
      name: 'unsubscribe',
      payload: UnsubscribePayload,
      handle(ctx, { subscription_id }) {
        const ended = subscriptions.close(ctx.socket, subscription_id);
        if (subscription_id !== undefined && ended.length === 0) {
          throw new AgentError('not_found', `no subscription ${subscription_id} on this connection`, {
            details: { subscriptions: subscriptions.ids(ctx.socket) },
          });
        }
        return { unsubscribed: ended };
      },
    }),
  ];
}
