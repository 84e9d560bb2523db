/** What the parts of the engine share: the store and its journaled writes, the adapters, metrics and turns. */
import type { AdapterRegistry } from '../adapter-registry.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { IoTurns } from './queue.js';
import type { StateWriter } from './state.js';
import type { StepRunnerDeps } from './step-runner.js';

export interface EngineContext {
  store: Store;
  state: StateWriter;
  registry: AdapterRegistry;
  metrics: Metrics;
  steps: StepRunnerDeps;
  turns: IoTurns;
  /** True once shutdown began: no new step or compensation starts. */
  draining(): boolean;
}
