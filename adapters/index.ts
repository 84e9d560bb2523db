import type { Adapter } from './contract.js';
import { createApiAdapter } from './api/index.js';
import { createFlowrunnerAdapter, type FlowrunnerSettings } from './flowrunner/index.js';
import { createK8sAdapter, type K8sSettings } from './k8s/index.js';
import type { EgressSettings } from './shared/egress.js';
import { createShellAdapter } from './shell/index.js';
import type { ShellSettings } from './shell/settings.js';

export interface AdapterSettings {
  k8s?: K8sSettings;
  flowrunner?: FlowrunnerSettings;
  shell?: ShellSettings;
  /** Outbound HTTP of the api and flowrunner adapters. */
  egress?: EgressSettings;
}

/** The adapters this build ships. */
export function builtinAdapters(settings: AdapterSettings = {}): Adapter[] {
  return [
    createShellAdapter(settings.shell),
    createApiAdapter(settings.egress),
    createK8sAdapter(settings.k8s),
    createFlowrunnerAdapter({ ...settings.flowrunner, egress: settings.egress }),
  ];
}
