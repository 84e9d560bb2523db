import { Type } from '@sinclair/typebox';
import type { CoreV1Event } from '@kubernetes/client-node';
import { defineAction } from '../contract.js';
import { Nullable, StringEnum } from '../shared/schemas.js';
import { AnyKind, describe, Name, Namespace } from './kinds.js';
import { call, callOptions } from './runtime.js';
import type { K8sApi } from './api.js';

const EventsInput = Type.Object(
  {
    kind: AnyKind,
    name: Name,
    namespace: Type.Optional(Namespace),
    type: Type.Optional(StringEnum(['Normal', 'Warning'], { description: 'Only events of this type.' })),
    limit: Type.Optional(
      Type.Integer({
        description: 'At most this many events (the newest).',
        minimum: 1,
        maximum: 1000,
        default: 50,
      }),
    ),
  },
  { additionalProperties: false },
);

const EventView = Type.Object(
  {
    type: Nullable(Type.String()),
    reason: Nullable(Type.String()),
    message: Nullable(Type.String()),
    count: Type.Integer({ minimum: 0 }),
    lastTimestamp: Nullable(Type.String()),
    source: Nullable(Type.String()),
  },
  { additionalProperties: false },
);

const EventsOutput = Type.Object(
  { events: Type.Array(EventView), count: Type.Integer({ minimum: 0 }), warnings: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);

function when(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}

export function createEventsAction(k8s: K8sApi) {
  return defineAction({
    id: 'events',
    description:
      'Events about one object (involvedObject field selectors), newest first; optionally only type Warning.',
    mutates: false,
    supportsDryRun: false,
    input: EventsInput,
    output: EventsOutput,
    exampleOutput: {
      events: [
        {
          type: 'Warning',
          reason: 'BackOff',
          message: 'Back-off restarting failed container',
          count: 12,
          lastTimestamp: '2026-01-01T00:00:00Z',
          source: 'kubelet',
        },
      ],
      count: 1,
      warnings: 1,
    },
    async run(ctx, input) {
      const clients = await k8s.clients();
      const namespace = input.namespace ?? clients.namespace;
      const selectors = [
        `involvedObject.kind=${input.kind}`,
        `involvedObject.name=${input.name}`,
        `involvedObject.namespace=${namespace}`,
      ];
      if (input.type) selectors.push(`type=${input.type}`);
      const list = await call(
        ctx,
        `LIST events of ${describe({ kind: input.kind, namespace, name: input.name })}`,
        () =>
          clients.core.listNamespacedEvent(
            { namespace, fieldSelector: selectors.join(',') },
            callOptions(clients, ctx.signal),
          ),
      );
      const sorted = [...list.items].sort((a, b) => when(b) - when(a)).slice(0, input.limit ?? 50);
      const events = sorted.map((e) => ({
        type: e.type ?? null,
        reason: e.reason ?? null,
        message: e.message ?? null,
        count: e.count ?? 1,
        lastTimestamp: when(e) ? new Date(when(e)).toISOString() : null,
        source: e.source?.component ?? e.reportingComponent ?? null,
      }));
      ctx.log.info(
        `${events.length} event(s) for ${describe({ kind: input.kind, namespace, name: input.name })}${input.type ? ` of type ${input.type}` : ''}`,
      );
      for (const e of events)
        ctx.log.line(
          e.type === 'Warning' ? 'stderr' : 'stdout',
          `${e.lastTimestamp ?? '-'} ${e.type} ${e.reason} (x${e.count}): ${e.message}`,
        );
      return { events, count: events.length, warnings: events.filter((e) => e.type === 'Warning').length };
    },
  });
}
