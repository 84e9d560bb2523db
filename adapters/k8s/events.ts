import type { CoreV1Event } from '@kubernetes/client-node';
import { defineAction } from '../contract.js';
import { describe, kindSchema, nameSchema, namespaceSchema } from './kinds.js';
import { call, callOptions, type K8sRuntime } from './runtime.js';

export interface EventsInput {
  kind: string;
  name: string;
  namespace?: string;
  type?: 'Normal' | 'Warning';
  limit?: number;
}

export interface EventView {
  type: string | null;
  reason: string | null;
  message: string | null;
  count: number;
  lastTimestamp: string | null;
  source: string | null;
}

function when(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}

export function createEventsAction(rt: K8sRuntime) {
  return defineAction<EventsInput, { events: EventView[]; count: number; warnings: number }>({
    id: 'events',
    description:
      'Events about one object (involvedObject field selectors), newest first; optionally only type Warning.',
    mutates: false,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name'],
      properties: {
        kind: kindSchema(),
        name: nameSchema,
        namespace: namespaceSchema,
        type: { description: 'Only events of this type.', enum: ['Normal', 'Warning'] },
        limit: {
          description: 'At most this many events (the newest).',
          type: 'integer',
          minimum: 1,
          maximum: 1000,
          default: 50,
        },
      },
    },
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
      const clients = rt.conn.clients();
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
          clients.core.listNamespacedEvent({ namespace, fieldSelector: selectors.join(',') }, callOptions(ctx.signal)),
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
