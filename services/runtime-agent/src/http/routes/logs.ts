/** GET /logs/{id}: a page of log lines, or with follow=true a server-sent event stream until the execution ends. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf, watchAuthorization } from '../auth.js';
import { Once, QueryBool, QueryInt, querySchema } from '../request.js';
import type { RouteDoc } from '../openapi.js';
import { ErrorBody, LogPage } from '../schemas.js';
import { openSse, resumeFrom, type SseStream } from '../sse.js';
import type { RouteDeps } from './deps.js';

const LogQuery = querySchema(
  Type.Object({
    since: Once(QueryInt(0, Number.MAX_SAFE_INTEGER)),
    limit: Once(QueryInt(1, 10_000)),
    step: Once(Type.String()),
    follow: Once(QueryBool()),
  }),
);

export const logRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/logs/:id',
    summary: "An execution's log, as a page or (follow=true) a live stream until the execution ends",
    needs: 'read',
    query: LogQuery.schema,
    responses: {
      200: {
        description: 'the lines after `since`',
        schema: LogPage,
        stream: 'follow=true: `event: log` per line with `id: <seq>`, then `event: end` with the status',
      },
      404: { description: 'no such execution', schema: ErrorBody },
    },
  },
];

export function mountLogRoutes(router: Router, { service, tokens }: RouteDeps): void {
  router.get('/logs/:id', need('read'), (ctx) => {
    const id = ctx.params.id;
    const actor = principalOf(ctx);
    const q = LogQuery(ctx);
    if (q.follow !== 'true') {
      ctx.body = service.logs(actor, id, q);
      return;
    }
    let sse: SseStream | undefined;
    const stop = service.followLogs(actor, id, { since: resumeFrom(ctx, q.since), step: q.step }, () => {
      const stream = openSse(ctx);
      sse = stream;
      stream.onClose(watchAuthorization(ctx, tokens, 'read', () => stream.close()));
      return {
        line: (l) => stream.send('log', l, l.seq),
        end: (status) => {
          stream.send('end', { execution_id: id, status });
          stream.close();
        },
      };
    });
    sse?.onClose(stop);
  });
}
