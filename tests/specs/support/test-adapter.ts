/**
 * Small adapters for engine and service tests: each action writes what the test is about and takes
 * the rest from defaults (any object in and out, example output `{}`, read-only, no dry-run support).
 */
import type { ActionSpec, Adapter, AdapterHealth } from '../../../adapters/contract.js';

export const ANY_OBJECT = { type: 'object' } as const;

type Defaulted = 'mutates' | 'supportsDryRun' | 'input' | 'output' | 'exampleOutput';

/** An action of a test adapter: its id is its key; what `Defaulted` names may be left out. */
export type TestAction = Omit<ActionSpec, 'id' | Defaulted> & Partial<Pick<ActionSpec, Defaulted>>;

/** An adapter of `actions`, ready unless `readiness` says otherwise. */
export function testAdapter(
  name: string,
  description: string,
  actions: Record<string, TestAction>,
  readiness: () => AdapterHealth = () => ({ ready: true }),
): Adapter {
  return {
    name,
    description,
    actions: Object.fromEntries(
      Object.entries(actions).map(([id, action]) => [
        id,
        {
          id,
          mutates: false,
          supportsDryRun: false,
          input: ANY_OBJECT,
          output: ANY_OBJECT,
          exampleOutput: {},
          ...action,
        },
      ]),
    ),
    readiness,
  };
}
