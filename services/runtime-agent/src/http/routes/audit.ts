/** GET /audit: who changed what, for admins. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf } from '../auth.js';
import type { RouteDoc } from '../openapi.js';
import { Once, QueryInt, querySchema } from '../request.js';
import { AuditPage } from '../schemas.js';
import type { RouteDeps } from './deps.js';

const AuditQuery = querySchema(
  Type.Object({
    since: Once(QueryInt(0, Number.MAX_SAFE_INTEGER)),
    limit: Once(QueryInt(1, 1000)),
    actor: Once(Type.String()),
    execution_id: Once(Type.String()),
  }),
);

export const auditRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/audit',
    summary: 'Who changed what: every state-changing call, and every refused one',
    needs: 'audit',
    query: AuditQuery.schema,
    responses: { 200: { description: 'entries after `since`, oldest first', schema: AuditPage } },
  },
];

export function mountAuditRoutes(router: Router, { service }: RouteDeps): void {
  router.get('/audit', need('audit'), (ctx) => {
    ctx.body = service.audit(principalOf(ctx), AuditQuery(ctx));
  });
}
