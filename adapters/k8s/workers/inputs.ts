/**
 * The worker commands' inputs, in the seed's shapes (`environment` a map, `ports` a map of port to port,
 * `volumes` a map of source to mount path), declared once: the JSON Schema each surface checks with and
 * the static type the fleet takes. What a schema cannot say (a host path, a setting the worker needs for
 * itself) is checked by `volumeMounts` and `environmentOf`, with every problem named.
 */
import { type Static, Type } from '@sinclair/typebox';
import { type Problem, ValidationError } from '../../errors.js';
import { Dictionary } from '../../shared/schemas.js';
import { WORKER_NAME } from './labels.js';

const ContainerId = Type.String({
  description: 'The worker: its Deployment name (what create_container answered as container_id).',
  minLength: 1,
  maxLength: 47,
  pattern: WORKER_NAME.source,
});
const Environment = Dictionary(Type.String({ maxLength: 32_768 }), {
  description: 'Environment variables of the worker container.',
  maxProperties: 200,
});

export const CreateWorkerInput = Type.Object(
  {
    name: Type.String({
      description: 'The worker name (a DNS label): names its Deployment and Service.',
      minLength: 1,
      maxLength: 47,
    }),
    image: Type.Optional(
      Type.String({
        description: "Default: FLOW_WORKER_IMAGE (this agent's own image).",
        minLength: 1,
        maxLength: 512,
      }),
    ),
    environment: Type.Optional(Environment),
    ports: Type.Optional(
      Dictionary(Type.Integer({ minimum: 1, maximum: 65535 }), {
        description: 'Extra container ports, as { "<port>": <port> }; the control port is always there.',
        maxProperties: 20,
      }),
    ),
    volumes: Type.Optional(
      Dictionary(Type.String({ minLength: 1, maxLength: 4096 }), {
        description:
          'Mounts, as { "<source>": "<mount path>" }: the source is pvc/<claim> or configmap/<name>; host paths are refused.',
        maxProperties: 20,
      }),
    ),
    traffic_control: Type.Optional(
      Type.Boolean({
        description:
          'The worker shapes its traffic with tc (its FLOWRUNNER_CONTROL_CONFIG enables traffic_control): its container gets the NET_ADMIN capability, and only then (default false).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateWorkerInput = Static<typeof CreateWorkerInput>;

export const WorkerRef = Type.Object({ container_id: ContainerId }, { additionalProperties: false });
export type WorkerRef = Static<typeof WorkerRef>;

export const StartWorkerInput = Type.Object(
  {
    container_id: ContainerId,
    replicas: Type.Optional(Type.Integer({ description: 'Pods to run (default 1).', minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
);
export type StartWorkerInput = Static<typeof StartWorkerInput>;

export const UpdateWorkerInput = Type.Object(
  {
    container_id: ContainerId,
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    environment: Type.Optional(Environment),
  },
  { additionalProperties: false },
);
export type UpdateWorkerInput = Static<typeof UpdateWorkerInput>;

export const WORKER_COMMANDS = ['start', 'stop', 'update', 'status'] as const;
export const SendMessageInput = Type.Object(
  {
    container_id: ContainerId,
    message: Type.Object(
      {
        command: Type.Unsafe<(typeof WORKER_COMMANDS)[number]>({ enum: [...WORKER_COMMANDS] }),
        data: Type.Optional(Type.Object({}, { additionalProperties: true })),
      },
      { additionalProperties: false },
    ),
    pod: Type.Optional(Type.String({ description: 'One pod of the worker; default: every pod.', minLength: 1 })),
  },
  { additionalProperties: false },
);
export type SendMessageInput = Static<typeof SendMessageInput>;

/** Settings the worker sets for itself; an `environment` entry may not replace them. */
export const RESERVED_ENV = ['HOST', 'PORT', 'RUNTIME_AGENT_TOKENS_FILE', 'DATA_DIR'];

export interface Mount {
  volume: { name: string } & ({ persistentVolumeClaim: { claimName: string } } | { configMap: { name: string } });
  mountPath: string;
}

/** Where the worker mounts its own volumes (manifests.ts): a volume may not go there or above. */
export const RESERVED_MOUNTS = ['/data', '/tmp', '/etc/runtime-agent/worker'];

const within = (path: string, dir: string) => path === dir || path.startsWith(`${dir.replace(/\/$/, '')}/`);

const SOURCE = /^(pvc|persistentvolumeclaim|configmap)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/i;

/** The volumes and mounts `volumes` asks for; a host path or an unknown source is a problem. */
export function volumeMounts(volumes: Record<string, string>, problems: Problem[]): Mount[] {
  const taken: string[] = [];
  return Object.entries(volumes).flatMap(([source, mountPath], i) => {
    const path = `volumes.${source}`;
    if (source.startsWith('/') || source.startsWith('.') || source.startsWith('~')) {
      problems.push({
        path,
        message: 'host paths are refused: a worker runs on any node; use pvc/<claim> or configmap/<name>',
      });
      return [];
    }
    const m = SOURCE.exec(source);
    if (!m) {
      problems.push({ path, message: 'must be pvc/<claim name> or configmap/<name>' });
      return [];
    }
    if (!mountPath.startsWith('/') || mountPath.includes('..') || mountPath.includes(':')) {
      problems.push({ path, message: 'the mount path must be absolute, without .. or :' });
      return [];
    }
    const clash = [...RESERVED_MOUNTS, ...taken].find((m) => within(mountPath, m) || within(m, mountPath));
    if (clash) {
      problems.push({
        path,
        message: `${mountPath} overlaps ${clash}, which ${RESERVED_MOUNTS.includes(clash) ? 'the worker uses itself' : 'another volume mounts'}`,
      });
      return [];
    }
    taken.push(mountPath);
    const name = `volume-${i}`;
    const volume =
      m[1].toLowerCase() === 'configmap'
        ? { name, configMap: { name: m[2] } }
        : { name, persistentVolumeClaim: { claimName: m[2] } };
    return [{ volume, mountPath }];
  });
}

/** The `environment` entries as a container's env; reserved names are problems. */
export function environmentOf(
  env: Record<string, string>,
  problems: Problem[],
): Array<{ name: string; value: string }> {
  return Object.entries(env).flatMap(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      problems.push({ path: `environment.${name}`, message: 'must be a valid environment variable name' });
      return [];
    }
    if (RESERVED_ENV.includes(name)) {
      problems.push({
        path: `environment.${name}`,
        message: `is set by the agent for the worker (${RESERVED_ENV.join(', ')})`,
      });
      return [];
    }
    return [{ name, value }];
  });
}

export function throwProblems(what: string, problems: Problem[]): void {
  if (problems.length)
    throw new ValidationError(`${what}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, problems);
}
