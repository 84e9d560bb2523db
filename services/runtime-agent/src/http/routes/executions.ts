/** Executions: submit, read, list, cancel, retry and roll back. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { MAX_LIST_LIMIT } from '../../service/filters.js';
import { SIGNATURE_HEADER } from '../../wpk/signature.js';
import { need, principalOf } from '../auth.js';
import { EXECUTION_STATUSES } from '../../store/types.js';
import { bodySchema, NoQuery, Once, QueryInt, querySchema, QueryTime, Repeated } from '../request.js';
import type { RouteDeps } from './deps.js';
import { PackageFields } from './packages.js';

const ExecuteBody = bodySchema(
  Type.Object(
    {
      ...PackageFields,
      dry_run: Type.Optional(Type.Boolean()),
      rollback_on_failure: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
);

const RetryBody = bodySchema(
  Type.Object(
    {
      from_step: Type.Optional(Type.String({ minLength: 1, description: 'The first step to run again' })),
      parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    },
    { additionalProperties: false },
  ),
  { allowEmpty: true },
);

const ListQuery = querySchema(
  Type.Object({
    status: Repeated(EXECUTION_STATUSES),
    workflow_id: Once(Type.String()),
    since: Once(QueryTime()),
    until: Once(QueryTime()),
    limit: Once(QueryInt(1, MAX_LIST_LIMIT)),
    cursor: Once(Type.String()),
  }),
);

export function mountExecutionRoutes(router: Router, { service, bodyLimitBytes }: RouteDeps): void {
  router.post('/execute', need('submit'), async (ctx) => {
    const { value, raw } = await ExecuteBody(ctx, bodyLimitBytes);
    const { created, execution } = await service.submit(principalOf(ctx), value, {
      idempotencyKey: ctx.get('Idempotency-Key') || undefined,
      requestText: raw,
      signature: ctx.get(SIGNATURE_HEADER) || undefined,
    });
    ctx.status = created ? 202 : 200;
    ctx.set('Location', `/execute/${execution.execution_id}`);
    ctx.body = execution;
  });

  router.get('/execute/:id', need('read'), (ctx) => {
    NoQuery(ctx);
    ctx.body = service.get(principalOf(ctx), ctx.params.id);
  });

  router.get('/executions', need('read'), (ctx) => {
    ctx.body = service.list(principalOf(ctx), ListQuery(ctx));
  });

  router.post('/execute/:id/cancel', need('cancel'), (ctx) => {
    ctx.status = 202;
    ctx.body = service.cancel(principalOf(ctx), ctx.params.id);
  });

  router.post('/execute/:id/retry', need('retry'), async (ctx) => {
    NoQuery(ctx);
    const { value } = await RetryBody(ctx, bodyLimitBytes);
    const answer = await service.retry(principalOf(ctx), ctx.params.id, value);
    ctx.status = 202;
    ctx.set('Location', `/execute/${answer.execution_id}`);
    ctx.body = answer;
  });

  router.post('/rollback/:id', need('rollback'), (ctx) => {
    const answer = service.rollback(principalOf(ctx), ctx.params.id);
    ctx.status = 202;
    ctx.set('Location', `/execute/${answer.execution_id}`);
    ctx.body = answer;
  });
}
