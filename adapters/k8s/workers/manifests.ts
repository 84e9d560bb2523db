/**
 * The objects of one worker: a Deployment (created at 0 replicas), a Service in front of its control port,
 * and a Secret holding the token the agent sends to the worker's control API. A worker runs this product's
 * own image serving the FlowRunner control API (`/api/*`) on all interfaces, which the agent allows only
 * with a tokens file: the Secret is that file.
 */
import { randomBytes } from 'node:crypto';
import type { KObj } from '../runtime.js';
import type { Mount } from './inputs.js';
import { podSelector, workerLabels } from './labels.js';

/** Where the worker reads its tokens file. */
export const TOKENS_MOUNT = '/etc/runtime-agent/worker';
/** The token's entry name in the worker's tokens file (the audit log of the worker shows it). */
export const MANAGER_TOKEN_NAME = 'flow-manager';
/** The worker container's name in the pod template. */
export const WORKER_CONTAINER = 'worker';
export const CONTROL_PORT_NAME = 'control';

export interface WorkerShape {
  namespace: string;
  name: string;
  manager: string;
  image: string;
  controlPort: number;
  env: Array<{ name: string; value: string }>;
  ports: number[];
  mounts: Mount[];
  /** The worker applies traffic control (tc): NET_ADMIN is added to its otherwise empty capabilities. */
  netAdmin?: boolean;
}

export const secretName = (worker: string) => `${worker}-control`;

/** A new control token and the Secret that carries it. */
export function controlSecret(shape: Pick<WorkerShape, 'namespace' | 'name' | 'manager'>): {
  secret: KObj;
  token: string;
} {
  const token = randomBytes(32).toString('hex');
  const tokens = `- name: ${MANAGER_TOKEN_NAME}\n  token: ${token}\n  roles: [admin]\n`;
  return {
    token,
    secret: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: secretName(shape.name),
        namespace: shape.namespace,
        labels: workerLabels(shape.manager, shape.name),
      },
      type: 'Opaque',
      stringData: { 'tokens.yaml': tokens, token },
    },
  };
}

export function workerDeployment(shape: WorkerShape): KObj {
  const labels = workerLabels(shape.manager, shape.name);
  const probe = (path: string) => ({
    httpGet: { path, port: CONTROL_PORT_NAME },
    periodSeconds: 5,
    failureThreshold: 3,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: shape.name, namespace: shape.namespace, labels },
    spec: {
      replicas: 0,
      selector: { matchLabels: podSelector(shape.name) },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: WORKER_CONTAINER,
              image: shape.image,
              env: [
                { name: 'HOST', value: '0.0.0.0' },
                { name: 'PORT', value: String(shape.controlPort) },
                { name: 'DATA_DIR', value: '/data' },
                { name: 'RUNTIME_AGENT_TOKENS_FILE', value: `${TOKENS_MOUNT}/tokens.yaml` },
                ...shape.env,
              ],
              ports: [
                { name: CONTROL_PORT_NAME, containerPort: shape.controlPort, protocol: 'TCP' },
                ...shape.ports
                  .filter((p) => p !== shape.controlPort)
                  .map((p) => ({ containerPort: p, protocol: 'TCP' })),
              ],
              readinessProbe: probe('/ready'),
              livenessProbe: { ...probe('/health'), initialDelaySeconds: 10 },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'], ...(shape.netAdmin && { add: ['NET_ADMIN'] }) },
                // A non-root process gets no effective capability from the runtime, and without privilege
                // escalation no file capability either: tc gets NET_ADMIN only as uid 0, which then holds nothing else.
                ...(shape.netAdmin && { runAsUser: 0, runAsNonRoot: false }),
              },
              volumeMounts: [
                { name: 'data', mountPath: '/data' },
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'control', mountPath: TOKENS_MOUNT, readOnly: true },
                ...shape.mounts.map((m) => ({ name: m.volume.name, mountPath: m.mountPath })),
              ],
            },
          ],
          volumes: [
            { name: 'data', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
            { name: 'control', secret: { secretName: secretName(shape.name) } },
            ...shape.mounts.map((m) => m.volume),
          ],
        },
      },
    },
  };
}

export function workerService(shape: Pick<WorkerShape, 'namespace' | 'name' | 'manager' | 'controlPort'>): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: shape.name, namespace: shape.namespace, labels: workerLabels(shape.manager, shape.name) },
    spec: {
      selector: podSelector(shape.name),
      ports: [{ name: CONTROL_PORT_NAME, port: shape.controlPort, targetPort: CONTROL_PORT_NAME, protocol: 'TCP' }],
    },
  };
}
