import type { Adapter } from './contract.js';
import { apiAdapter } from './api/index.js';
import { shellAdapter } from './shell/index.js';

/** The adapters this build ships. k8s and flowrunner arrive in their own issues. */
export function builtinAdapters(): Adapter[] {
  return [shellAdapter, apiAdapter];
}
