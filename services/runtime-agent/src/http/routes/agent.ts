/** The agent itself: liveness, readiness, adapter (re)configuration and metrics. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf } from '../auth.js';
import { bodySchema } from '../request.js';
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

  router.get('/metrics', async (ctx) => {
    const m = await service.metricsText(service.metricsNeedToken ? principalOf(ctx) : undefined);
    ctx.type = m.contentType;
    ctx.body = m.text;
  });
}
