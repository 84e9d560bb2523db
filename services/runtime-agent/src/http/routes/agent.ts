/** The agent itself: liveness, readiness, adapter (re)configuration and metrics. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf } from '../auth.js';
import type { RouteDoc } from '../openapi.js';
import { bodySchema } from '../request.js';
import { NoQuery } from '../request.js';
import { ErrorBody, Health, InitAnswer, Ready, WhoAmI } from '../schemas.js';
import type { RouteDeps } from './deps.js';

const InitBody = bodySchema(
  Type.Object(
    {
      adapters: Type.Optional(
        Type.Record(Type.String(), Type.Object({}, { description: 'an empty one goes back to detection' })),
      ),
    },
    { additionalProperties: false },
  ),
  { allowEmpty: true },
);

export const agentRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/health',
    summary: "The agent's state, and each adapter's readiness and actions",
    responses: { 200: { description: 'the agent answers', schema: Health } },
  },
  {
    method: 'get',
    path: '/ready',
    summary: 'Whether the agent takes work: store open, not draining, recovery done',
    responses: {
      200: { description: 'ready', schema: Ready },
      503: { description: 'not ready; `reasons` says why', schema: Ready },
    },
  },
  {
    method: 'post',
    path: '/init',
    summary: 'Configures the adapters named (an empty object goes back to detection)',
    needs: 'init',
    body: InitBody.schema,
    bodyOptional: InitBody.optional,
    responses: { 200: { description: 'the adapters as they are now', schema: InitAnswer } },
  },
  {
    method: 'get',
    path: '/whoami',
    summary: 'The caller: its name, its role, and what that role may do',
    needs: 'read',
    responses: { 200: { description: 'the caller', schema: WhoAmI } },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus exposition (a viewer token with METRICS_AUTH=token)',
    responses: {
      200: { description: 'the metrics', contentType: 'text/plain' },
      401: { description: 'METRICS_AUTH=token and no valid token', schema: ErrorBody },
      403: { description: "the token's role is below viewer", schema: ErrorBody },
    },
  },
];

export function mountAgentRoutes(router: Router, { service, bodyLimitBytes }: RouteDeps): void {
  router.get('/health', async (ctx) => {
    ctx.body = await service.health();
  });

  router.get('/ready', (ctx) => {
    const ready = service.ready();
    ctx.status = ready.ready ? 200 : 503;
    ctx.body = ready;
  });

  router.post('/init', need('init'), async (ctx) => {
    const { value } = await InitBody(ctx, bodyLimitBytes);
    ctx.body = await service.init(principalOf(ctx), (value.adapters ?? {}) as Record<string, Record<string, unknown>>);
  });

  router.get('/whoami', need('read'), (ctx) => {
    NoQuery(ctx);
    ctx.body = service.whoami(principalOf(ctx));
  });

  router.get('/metrics', async (ctx) => {
    const m = await service.metricsText(service.metricsNeedToken ? principalOf(ctx) : undefined);
    ctx.type = m.contentType;
    ctx.body = m.text;
  });
}
