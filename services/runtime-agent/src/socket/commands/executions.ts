/**
 * Executions over the channel: each command is the HTTP route of the same name with its body as payload,
 * and calls the same service operation with the caller's Principal (the role rules are the service's).
 */
import { Type } from '@sinclair/typebox';
import { ExecuteFields, RetryFields } from '../../http/routes/executions.js';
import { MAX_LIST_LIMIT } from '../../service/filters.js';
import { type AgentService, MAX_IDEMPOTENCY_KEY_CHARS } from '../../service/agent-service.js';
import { defineCommand, OneOrMore } from '../registry.js';

const ExecutionId = Type.String({ minLength: 1, maxLength: 200, description: 'The execution' });
const ById = Type.Object({ execution_id: ExecutionId }, { additionalProperties: false });

/** POST /execute's body, plus what its headers carry there. */
const ExecutePayload = Type.Object(
  {
    ...ExecuteFields.properties,
    idempotency_key: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_IDEMPOTENCY_KEY_CHARS,
        description: 'As the Idempotency-Key header: the same key with the same payload answers the same execution',
      }),
    ),
    signature: Type.Optional(
      Type.String({ minLength: 1, description: "As the X-WPK-Signature header: the inline package's signature" }),
    ),
  },
  { additionalProperties: false },
);

const RetryPayload = Type.Object(
  { execution_id: ExecutionId, ...RetryFields.properties },
  { additionalProperties: false },
);

/** GET /executions' filters; the service checks their values. */
const ListPayload = Type.Object(
  {
    status: Type.Optional(OneOrMore('one or more statuses (a list, or a comma list)')),
    workflow_id: Type.Optional(Type.String()),
    since: Type.Optional(Type.String()),
    until: Type.Optional(Type.String()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIST_LIMIT })),
    cursor: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export function executionCommands(service: AgentService) {
  return [
    defineCommand({
      name: 'execute',
      payload: ExecutePayload,
      mutates: true,
      async handle(ctx, { idempotency_key, signature, ...request }) {
        const { created, execution } = await service.submit(ctx.principal, request, {
          idempotencyKey: idempotency_key,
          // The key is bound to the request without the two header fields, as on HTTP.
          requestText: JSON.stringify(request),
          signature,
        });
        return { ...execution, created };
      },
    }),
    defineCommand({
      name: 'cancel_execution',
      payload: ById,
      mutates: true,
      handle: (ctx, { execution_id }) => service.cancel(ctx.principal, execution_id),
    }),
    defineCommand({
      name: 'rollback_execution',
      payload: ById,
      mutates: true,
      handle: (ctx, { execution_id }) => service.rollback(ctx.principal, execution_id),
    }),
    defineCommand({
      name: 'retry_execution',
      payload: RetryPayload,
      mutates: true,
      handle: (ctx, { execution_id, ...request }) => service.retry(ctx.principal, execution_id, request),
    }),
    defineCommand({
      name: 'get_execution_status',
      payload: ById,
      handle: (ctx, { execution_id }) => ({ execution: service.get(ctx.principal, execution_id) }),
    }),
    defineCommand({
      name: 'list_executions',
      payload: ListPayload,
      handle: (ctx, query) => service.list(ctx.principal, query),
    }),
  ];
}
