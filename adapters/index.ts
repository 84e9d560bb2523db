import type { Adapter } from './contract.js';
import { createApiAdapter } from './api/index.js';
import { createFlowrunnerAdapter, type FlowrunnerSettings } from './flowrunner/index.js';
import { createK8sAdapter, type K8sSettings } from './k8s/index.js';
import { type FleetSettings, WorkerFleet } from './k8s/workers/fleet.js';
import type { EgressSettings } from './shared/egress.js';
import { createShellAdapter } from './shell/index.js';
import type { ShellSettings } from './shell/settings.js';

export interface AdapterSettings {
  k8s?: K8sSettings;
  flowrunner?: FlowrunnerSettings;
  shell?: ShellSettings;
  /** The Flow Manager's FlowRunner workers on Kubernetes (through the k8s adapter's connection). */
  workers?: FleetSettings;
  /** Outbound HTTP of the api and flowrunner adapters. */
  egress?: EgressSettings;
}

const DEFAULT_FLEET: FleetSettings = {
  image: 'runtime-agent:0.1.0',
  controlPort: 8080,
  manager: 'runtime-agent',
  readyTimeoutMs: 180_000,
};

/** The adapters this build ships. */
export function builtinAdapters(settings: AdapterSettings = {}): Adapter[] {
  const k8s = createK8sAdapter(settings.k8s);
  const fleet = new WorkerFleet(k8s.k8s, settings.workers ?? DEFAULT_FLEET);
  return [
    createShellAdapter(settings.shell),
    createApiAdapter(settings.egress),
    k8s,
    createFlowrunnerAdapter({ ...settings.flowrunner, egress: settings.egress, fleet }),
  ];
}
