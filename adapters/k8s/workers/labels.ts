/**
 * How the agent marks the FlowRunner workers it manages, and finds them again: every object it creates
 * carries these labels, and it acts only on objects that carry them with its own manager name, so a
 * Deployment someone else made is "not found" to every worker command.
 */
import type { KObj } from '../runtime.js';

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'runtime-agent';
export const COMPONENT = 'app.kubernetes.io/component';
export const COMPONENT_VALUE = 'flowrunner-worker';
export const INSTANCE = 'app.kubernetes.io/instance';
/** Which agent manages the worker (AGENT_NAME, else POD_NAME, else `runtime-agent`). */
export const MANAGER = 'runtime-agent.io/manager';

/** A worker's name: a DNS label, because it names a Service too. */
export const WORKER_NAME = /^[a-z]([-a-z0-9]{0,45}[a-z0-9])?$/;

/** The labels of every object of worker `name`. */
export function workerLabels(manager: string, name: string): Record<string, string> {
  return { [MANAGED_BY]: MANAGED_BY_VALUE, [COMPONENT]: COMPONENT_VALUE, [MANAGER]: manager, [INSTANCE]: name };
}

/** The pod selector of worker `name` (what its Deployment and Service select on). */
export function podSelector(name: string): Record<string, string> {
  return { [COMPONENT]: COMPONENT_VALUE, [INSTANCE]: name };
}

/** The label selector of everything this manager manages (`a=b,c=d`). */
export function managedSelector(manager: string, name?: string): string {
  const labels: Record<string, string> = {
    [MANAGED_BY]: MANAGED_BY_VALUE,
    [COMPONENT]: COMPONENT_VALUE,
    [MANAGER]: manager,
  };
  if (name) labels[INSTANCE] = name;
  return selectorOf(labels);
}

export function selectorOf(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** True when `obj` is one of this manager's workers. */
export function isManaged(obj: KObj | undefined, manager: string): obj is KObj {
  const labels = obj?.metadata?.labels ?? {};
  return (
    labels[MANAGED_BY] === MANAGED_BY_VALUE && labels[COMPONENT] === COMPONENT_VALUE && labels[MANAGER] === manager
  );
}

/** A manager name that is a valid label value (at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends). */
export function managerLabel(name: string): string {
  const cleaned = name
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return cleaned || MANAGED_BY_VALUE;
}
