/** GET /logs/{id}: a page of log lines, or with follow=true a server-sent event stream until the execution ends. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf, watchAuthorization } from '../auth.js';
import { Once, QueryBool, QueryInt, querySchema } from '../request.js';
import { openSse, resumeFrom } from '../sse.js';
import type { RouteDeps } from './deps.js';

const LogQuery = querySchema(
  Type.Object({
    since: Once(QueryInt(0, Number.MAX_SAFE_INTEGER)),
    limit: Once(QueryInt(1, 10_000)),
    step: Once(Type.String()),
    follow: Once(QueryBool()),
  }),
);

export function mountLogRoutes(router: Router, { service, tokens }: RouteDeps): void {
  router.get('/logs/:id', need('read'), (ctx) => {
    const id = ctx.params.id;
    const actor = principalOf(ctx);
    const q = LogQuery(ctx);
    if (q.follow !== 'true') {
      ctx.body = service.logs(actor, id, q);
      return;
    }
    const since = resumeFrom(ctx, q.since);
    service.get(actor, id); // 404 before the stream opens
    const sse = openSse(ctx);
    sse.onClose(watchAuthorization(ctx, tokens, 'read', () => sse.close()));
    const stop = service.followLogs(
      actor,
      id,
      { since, step: q.step },
      {
        line: (l) => sse.send('log', l, l.seq),
        end: (status) => {
          sse.send('end', { execution_id: id, status });
          sse.close();
        },
      },
    );
    sse.onClose(stop);
  });
}
