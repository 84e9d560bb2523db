/** GET /events: the event journal, as a stored page, or with follow=true as a server-sent event stream. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf, watchAuthorization } from '../auth.js';
import { EVENT_TYPES } from '../../store/types.js';
import { Once, QueryBool, QueryInt, querySchema, Repeated } from '../request.js';
import type { RouteDoc } from '../openapi.js';
import { EventPage } from '../schemas.js';
import { openSse, resumeFrom, type SseStream } from '../sse.js';
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

export const eventRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/events',
    summary: 'The event journal: every state change, as a stored page or (follow=true) a live stream',
    needs: 'read',
    query: EventQuery.schema,
    responses: {
      200: {
        description: 'the events after `since`, oldest first',
        schema: EventPage,
        stream: 'follow=true: `event: <type>`, `id: <seq>`, the event as JSON in `data`; resumes with Last-Event-ID',
      },
    },
  },
];

export function mountEventRoutes(router: Router, { service, tokens, eventStreams }: RouteDeps): void {
  router.get('/events', need('read'), (ctx) => {
    const actor = principalOf(ctx);
    const q = EventQuery(ctx);
    if (q.follow !== 'true') {
      ctx.body = service.events(actor, q);
      return;
    }
    let sse: SseStream | undefined;
    // The stream opens only once the query is known to be good: a bad filter is a 400.
    const stop = service.followEvents(actor, { ...q, since: resumeFrom(ctx, q.since) }, () => {
      const stream = openSse(ctx, undefined, eventStreams);
      sse = stream;
      // A token removed from the tokens file (or lowered below viewer) ends its open streams at the next reload.
      stream.onClose(
        watchAuthorization(ctx, tokens, 'read', () => {
          stream.send('error', { error_type: 'unauthorized', message: 'the token of this stream was revoked' });
          stream.close();
        }),
      );
      return (e) => stream.send(e.type, e, e.seq);
    });
    sse?.onClose(stop);
  });
}
