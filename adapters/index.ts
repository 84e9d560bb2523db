import type { Adapter } from './contract.js';
import { apiAdapter } from './api/index.js';
import { createFlowrunnerAdapter, type FlowrunnerSettings } from './flowrunner/index.js';
import { createK8sAdapter, type K8sSettings } from './k8s/index.js';
import { shellAdapter } from './shell/index.js';

export interface AdapterSettings {
  k8s?: K8sSettings;
  flowrunner?: FlowrunnerSettings;
}

/** The adapters this build ships. */
export function builtinAdapters(settings: AdapterSettings = {}): Adapter[] {
  return [shellAdapter, apiAdapter, createK8sAdapter(settings.k8s), createFlowrunnerAdapter(settings.flowrunner)];
}
