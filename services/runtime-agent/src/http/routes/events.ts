/** GET /events: the event journal, as a stored page, or with follow=true as a server-sent event stream. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf, watchAuthorization } from '../auth.js';
import { EVENT_TYPES } from '../../store/types.js';
import { Once, QueryBool, QueryInt, querySchema, Repeated } from '../request.js';
import { openSse, resumeFrom } from '../sse.js';
import type { RouteDeps } from './deps.js';

const EventQuery = querySchema(
  Type.Object({
    since: Once(QueryInt(0, Number.MAX_SAFE_INTEGER)),
    execution_id: Once(Type.String()),
    workflow_id: Once(Type.String()),
    types: Repeated(EVENT_TYPES),
    limit: Once(QueryInt(1, 10_000)),
    follow: Once(QueryBool()),
  }),
);

export function mountEventRoutes(router: Router, { service, tokens }: RouteDeps): void {
  router.get('/events', need('read'), (ctx) => {
    const actor = principalOf(ctx);
    const q = EventQuery(ctx);
    if (q.follow !== 'true') {
      ctx.body = service.events(actor, q);
      return;
    }
    const query = { ...q, since: resumeFrom(ctx, q.since) };
    service.events(actor, { ...query, limit: 1 }); // a bad filter is a 400 before the stream opens
    const sse = openSse(ctx);
    // A token removed from the tokens file (or lowered below viewer) ends its open streams at the next reload.
    sse.onClose(
      watchAuthorization(ctx, tokens, 'read', () => {
        sse.send('error', { error_type: 'unauthorized', message: 'the token of this stream was revoked' });
        sse.close();
      }),
    );
    sse.onClose(service.followEvents(actor, query, (e) => sse.send(e.type, e, e.seq)));
  });
}
