import { type Static, Type } from '@sinclair/typebox';
import type { V1Pod } from '@kubernetes/client-node';
import { defineAction } from '../contract.js';
import { AgentError } from '../errors.js';
import { Flag, Nullable } from '../shared/schemas.js';
import { describe, Name, Namespace, Selector } from './kinds.js';
import { call, callOptions, tail } from './runtime.js';
import type { K8sApi } from './api.js';

const LogsInput = Type.Object(
  {
    namespace: Type.Optional(Namespace),
    name: Type.Optional({ ...Name, description: 'Pod name (or give selector).' }),
    selector: Type.Optional({ ...Selector, description: 'Label selector of the pods (or give name).' }),
    container: Type.Optional(
      Type.String({ description: 'Only this container (default: every container of each pod).', minLength: 1 }),
    ),
    tailLines: Type.Optional(
      Type.Integer({ description: 'Lines from the end of each log.', minimum: 1, maximum: 100000, default: 200 }),
    ),
    sinceSeconds: Type.Optional(Type.Integer({ description: 'Only lines newer than this many seconds.', minimum: 1 })),
    previous: Flag("The previous (terminated) container's log: what a crash-looping container said before it died."),
    maxPods: Type.Optional(
      Type.Integer({ description: 'At most this many pods of a selector.', minimum: 1, maximum: 100, default: 10 }),
    ),
  },
  {
    additionalProperties: false,
    anyOf: [
      { required: ['name'], properties: { name: true } },
      { required: ['selector'], properties: { selector: true } },
    ],
    not: { required: ['name', 'selector'], properties: { name: true, selector: true } },
  },
);

const ContainerLog = Type.Object(
  {
    pod: Type.String(),
    container: Type.String(),
    lines: Type.Integer({ minimum: 0 }),
    text: Type.String({ description: 'the tail of the log' }),
    truncated: Type.Boolean(),
    error: Nullable(Type.String({ description: 'why this container has no log' })),
  },
  { additionalProperties: false },
);
type ContainerLog = Static<typeof ContainerLog>;

const LogsOutput = Type.Object(
  { pods: Type.Integer({ minimum: 0 }), containers: Type.Array(ContainerLog) },
  { additionalProperties: false },
);

/** Per container, the tail kept in outputs (the execution log gets every line). */
export const MAX_LOG_CHARS_PER_CONTAINER = 64 * 1024;
/** Across all containers of one step, what outputs keep at most; containers past it keep an empty, truncated text. */
export const MAX_LOG_CHARS_TOTAL = 1024 * 1024;

export function createLogsAction(k8s: K8sApi) {
  return defineAction({
    id: 'logs',
    description:
      'Container logs of pods by name or label selector (tailLines, sinceSeconds, previous for crash loops); lines go to the execution log, the tail to outputs.',
    mutates: false,
    supportsDryRun: false,
    input: LogsInput,
    output: LogsOutput,
    exampleOutput: {
      pods: 1,
      containers: [
        {
          pod: 'web-7d4b9c-x2x9z',
          container: 'web',
          lines: 2,
          text: 'starting\npanic: config missing\n',
          truncated: false,
          error: null,
        },
      ],
    },
    async run(ctx, input) {
      const clients = await k8s.clients();
      const namespace = input.namespace ?? clients.namespace;
      let pods: V1Pod[];
      if (input.name) {
        pods = [
          await call(ctx, `GET ${describe({ kind: 'Pod', namespace, name: input.name })}`, () =>
            clients.core.readNamespacedPod({ name: input.name!, namespace }, callOptions(clients, ctx.signal)),
          ),
        ];
      } else {
        const list = await call(ctx, `LIST pods ${namespace} -l ${input.selector}`, () =>
          clients.core.listNamespacedPod(
            { namespace, labelSelector: input.selector },
            callOptions(clients, ctx.signal),
          ),
        );
        pods = list.items.slice(0, input.maxPods ?? 10);
        if (list.items.length > pods.length)
          ctx.log.warn(`${list.items.length} pods match ${input.selector}; reading the first ${pods.length} (maxPods)`);
        if (pods.length === 0) ctx.log.warn(`no pods in ${namespace} match ${input.selector}`);
      }
      const containers: ContainerLog[] = [];
      let budget = MAX_LOG_CHARS_TOTAL;
      for (const pod of pods) {
        const podName = pod.metadata?.name ?? '?';
        const names = input.container ? [input.container] : (pod.spec?.containers ?? []).map((c) => c.name);
        for (const container of names) {
          const what = `logs of ${namespace}/${podName}/${container}${input.previous ? ' (previous)' : ''}`;
          try {
            const text = await call(ctx, what, () =>
              clients.core.readNamespacedPodLog(
                {
                  name: podName,
                  namespace,
                  container,
                  tailLines: input.tailLines ?? 200,
                  sinceSeconds: input.sinceSeconds,
                  previous: input.previous === true,
                },
                callOptions(clients, ctx.signal),
              ),
            );
            const lines = text.split('\n');
            if (lines[lines.length - 1] === '') lines.pop();
            for (const line of lines) ctx.log.line('stdout', `[${podName}/${container}] ${line}`);
            // Each container keeps its tail, and all of them together at most MAX_LOG_CHARS_TOTAL.
            const max = Math.min(MAX_LOG_CHARS_PER_CONTAINER, budget);
            const kept = tail(text, max);
            if (text.length > max && max < MAX_LOG_CHARS_PER_CONTAINER) {
              ctx.log.warn(
                `${what}: outputs keep at most ${MAX_LOG_CHARS_TOTAL} characters of logs in all; ${max} kept of this container's ${text.length} (the execution log has every line)`,
              );
            }
            budget -= Math.min(text.length, max);
            containers.push({
              pod: podName,
              container,
              lines: lines.length,
              text: kept.text,
              truncated: kept.truncated,
              error: null,
            });
          } catch (err) {
            if (ctx.signal.aborted || !(err instanceof AgentError) || (pods.length === 1 && names.length === 1))
              throw err;
            // One container of many without logs (not started, no previous container) does not hide the others'.
            ctx.log.warn(`${what}: ${err.message}`);
            containers.push({ pod: podName, container, lines: 0, text: '', truncated: false, error: err.message });
          }
        }
      }
      if (containers.length > 0 && containers.every((c) => c.error !== null)) {
        throw new AgentError(
          'adapter_error',
          `no logs could be read from ${containers.length} container(s): ${containers[0].error}`,
          { details: { containers } },
        );
      }
      return { pods: pods.length, containers };
    },
  });
}
