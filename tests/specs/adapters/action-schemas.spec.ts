import assert from 'node:assert/strict';
import { builtinAdapters } from '../../../adapters/index.js';
import { outputProblems } from '../support/outputs.js';

describe('adapter actions: declared schemas', () => {
  const actions = builtinAdapters().flatMap((a) =>
    Object.entries(a.actions).map(([id, spec]) => ({ name: `${a.name}.${id}`, spec })),
  );

  it('every action declares an input and an output schema as plain JSON', () => {
    assert.ok(actions.length >= 14, `found ${actions.length}`);
    for (const { name, spec } of actions) {
      for (const schema of [spec.input, spec.output])
        assert.deepEqual(schema, JSON.parse(JSON.stringify(schema)), `${name}: a schema with more than JSON in it`);
    }
  });

  it("every action's example output matches its output schema", () => {
    for (const { name, spec } of actions)
      assert.equal(outputProblems(spec, spec.exampleOutput), undefined, `${name}: exampleOutput`);
  });
});
