/** Executions: submit, read, list, cancel, retry and roll back. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { MAX_LIST_LIMIT } from '../../service/filters.js';
import { SIGNATURE_HEADER } from '../../wpk/signature.js';
import { need, principalOf } from '../auth.js';
import { EXECUTION_STATUSES } from '../../store/types.js';
import { bodySchema, NoQuery, Once, QueryInt, querySchema, QueryTime, Repeated } from '../request.js';
import type { RouteDoc } from '../openapi.js';
import {
  Accepted,
  CancelAnswer,
  ErrorBody,
  ExecutionList,
  ExecutionRecord,
  Overview,
  RetryAccepted,
  RollbackAnswer,
} from '../schemas.js';
import type { RouteDeps } from './deps.js';
import { PackageFields } from './packages.js';

/** The body of POST /execute (also the `execute` command's payload on the Socket.IO channel). */
export const ExecuteFields = Type.Object(
  {
    ...PackageFields,
    dry_run: Type.Optional(Type.Boolean()),
    rollback_on_failure: Type.Optional(Type.Boolean()),
    callback_url: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "absolute http(s) URL this execution's results are POSTed to, instead of RESULT_CALLBACK_URL (docs/callbacks.md); the egress policy applies",
      }),
    ),
  },
  { additionalProperties: false },
);
const ExecuteBody = bodySchema(ExecuteFields);

/** The body of POST /execute/{id}/retry. */
export const RetryFields = Type.Object(
  {
    from_step: Type.Optional(Type.String({ minLength: 1, description: 'The first step to run again' })),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
const RetryBody = bodySchema(RetryFields, { allowEmpty: true });

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

const OverviewQuery = querySchema(Type.Object({ since: Once(QueryTime()) }));

const notFound = { description: 'no such execution', schema: ErrorBody };
const conflict = (description: string) => ({ description, schema: ErrorBody });
const busy = { description: 'the agent is shutting down (or recovering after a restart)', schema: ErrorBody };

export const executionRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/execute',
    summary: 'Validates and queues an execution (Idempotency-Key and X-WPK-Signature headers are honoured)',
    needs: 'submit',
    body: ExecuteBody.schema,
    responses: {
      202: { description: 'accepted and stored; Location names it', schema: Accepted },
      200: { description: 'the execution an earlier request with the same Idempotency-Key created', schema: Accepted },
      400: {
        description: 'invalid package, parameters or callback_url (each problem listed); nothing queued',
        schema: ErrorBody,
      },
      403: { description: 'below executor, or a signature is required and does not verify', schema: ErrorBody },
      404: { description: 'no known package has that workflow_id', schema: ErrorBody },
      409: conflict('the Idempotency-Key was used with another request'),
      429: { description: 'the queue is full (Retry-After)', schema: ErrorBody },
      503: busy,
    },
  },
  {
    method: 'get',
    path: '/execute/:id',
    summary: 'The execution record: steps, outputs, errors, rollback',
    needs: 'read',
    responses: { 200: { description: 'the record', schema: ExecutionRecord }, 404: notFound },
  },
  {
    method: 'get',
    path: '/executions',
    summary: 'Executions, newest first, by status, workflow and creation time',
    needs: 'read',
    query: ListQuery.schema,
    responses: { 200: { description: 'a page; next_cursor fetches the next', schema: ExecutionList } },
  },
  {
    method: 'get',
    path: '/executions/overview',
    summary: 'Executions created since `since` (default 24h): counts by status, p50/p95 duration by workflow',
    needs: 'read',
    query: OverviewQuery.schema,
    responses: { 200: { description: 'the counts and durations', schema: Overview } },
  },
  {
    method: 'post',
    path: '/execute/:id/cancel',
    summary: "Cancels a pending or running execution (executor: its own; operator: anyone's)",
    needs: 'cancel',
    responses: {
      202: { description: 'cancelled, or the running step is being aborted', schema: CancelAnswer },
      404: notFound,
      409: conflict('the execution has ended'),
      503: busy,
    },
  },
  {
    method: 'post',
    path: '/execute/:id/retry',
    summary: 'A new execution of an ended one, from the step that failed (or from_step) on',
    needs: 'retry',
    body: RetryBody.schema,
    bodyOptional: RetryBody.optional,
    responses: {
      202: { description: 'the retry, accepted and stored; Location names it', schema: RetryAccepted },
      404: notFound,
      409: conflict('still running or rolling back, retried already, or a step before from_step cannot be kept'),
      429: { description: 'the queue is full (Retry-After)', schema: ErrorBody },
      503: busy,
    },
  },
  {
    method: 'post',
    path: '/rollback/:id',
    summary: 'Rolls back a failed, cancelled or completed execution by hand',
    needs: 'rollback',
    responses: {
      202: { description: 'the rollback started; Location names the execution', schema: RollbackAnswer },
      404: notFound,
      409: conflict(
        'not in a state to roll back, nothing to roll back, or a retry kept every step (roll back the retry)',
      ),
      503: busy,
    },
  },
];

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

  router.get('/executions/overview', need('read'), (ctx) => {
    ctx.body = service.overview(principalOf(ctx), OverviewQuery(ctx));
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
