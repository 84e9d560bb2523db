import assert from 'node:assert/strict';
import { builtinAdapters } from '../../../adapters/index.js';
import { AdapterRegistry } from '../../../services/runtime-agent/src/adapter-registry.js';
import { outputProblems } from '../support/outputs.js';

describe('adapter actions: declared schemas', () => {
  const adapters = builtinAdapters();
  const actions = adapters.flatMap((a) =>
    Object.entries(a.actions).map(([id, spec]) => ({ adapter: a.name, id, name: `${a.name}.${id}`, spec })),
  );

  it('every action declares an input and an output schema as plain JSON', () => {
    assert.ok(actions.length >= 14, `found ${actions.length}`);
    for (const { name, spec } of actions) {
      for (const schema of [spec.input, spec.output])
        assert.deepEqual(schema, JSON.parse(JSON.stringify(schema)), `${name}: a schema with more than JSON in it`);
    }
  });

  it("every action's input schema compiles in strict Ajv, for rendered inputs and for packages (templates allowed)", () => {
    // The registry compiles an action's validators when the action is first checked: a schema Ajv refuses
    // must fail here, not on the first package that uses the action.
    const registry = new AdapterRegistry(adapters);
    for (const { adapter, id, name, spec } of actions) {
      assert.doesNotThrow(() => registry.checkInput(spec, {}), `${name}: input schema for rendered inputs`);
      assert.doesNotThrow(() => registry.checkStatic(adapter, id, {}, []), `${name}: input schema for packages`);
    }
  });

  it("every action's example output matches its output schema", () => {
    for (const { name, spec } of actions)
      assert.equal(outputProblems(spec, spec.exampleOutput), undefined, `${name}: exampleOutput`);
  });
});
