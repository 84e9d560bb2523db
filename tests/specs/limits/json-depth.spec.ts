import assert from 'node:assert/strict';
import { builtinAdapters } from '../../../adapters/index.js';
import { jsonPath } from '../../../adapters/shared/paths.js';
import { AdapterRegistry } from '../../../services/runtime-agent/src/adapter-registry.js';
import { firstTooDeep, pathAt } from '../../../services/runtime-agent/src/http/json-depth.js';
import { PackageValidator } from '../../../services/runtime-agent/src/wpk/validate.js';
import { useAgent } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { assertServing, call, uniqueName } from '../http/http-support.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');
/** `[[[ … 1 … ]]]`, `depth` levels. */
const nestedArrays = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
/** `{"a":{"a": … 1 … }}`, `depth` levels. */
const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

describe('limits: JSON depth, measured on the raw body', () => {
  it('finds the bracket that opens level max + 1, and nothing in a body at the limit', () => {
    assert.equal(firstTooDeep(bytes(nestedArrays(64)), 64), -1);
    assert.equal(firstTooDeep(bytes(nestedArrays(65)), 64), 64);
    assert.equal(firstTooDeep(bytes(nestedObjects(65)), 64), 64 * 5);
    assert.equal(firstTooDeep(bytes('1'), 4), -1);
  });

  it('stops at the first level too deep: a megabyte of [ is refused after 65 bytes', () => {
    const huge = Buffer.alloc(1024 * 1024, '[');
    assert.equal(firstTooDeep(huge, 64), 64);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const text = JSON.stringify({ a: '[[[[[[[[', b: '"{{{{{{\\"[[[[', c: [[1]] });
    assert.equal(firstTooDeep(bytes(text), 3), -1);
    assert.equal(firstTooDeep(bytes(text), 2), text.indexOf('[[1') + 1);
  });

  it('names where it is too deep with a JSON path through keys and indexes', () => {
    const text = JSON.stringify({ x: 1, 'odd key': [0, { 'q"uote': [[[9]]] }] });
    const at = firstTooDeep(bytes(text), 4);
    assert.ok(at > 0);
    assert.equal(jsonPath(pathAt(bytes(text), at)), '$["odd key"][1]["q\\"uote"][0]');
  });
});

describe('limits: JSON depth through the agent (MAX_JSON_DEPTH default 64)', () => {
  const agent = useAgent();

  it('answers a body nested 65 deep with 400 validation_error naming MAX_JSON_DEPTH and the path, and serves on', async () => {
    const name = uniqueName('deep');
    const body = `{"wpk_content":${JSON.stringify(pkg(name, [shellStep('a', ['true'])]))},"parameters":{"p":${nestedArrays(63)}}}`;
    const r = await call(agent, 'POST', '/execute', body);
    assert.equal(r.status, 400);
    assert.equal(r.body.error_type, 'validation_error');
    assert.match(r.body.message, /deeper than 64 levels.*MAX_JSON_DEPTH/);
    assert.equal(r.body.details.setting, 'MAX_JSON_DEPTH');
    assert.equal(r.body.details.max_depth, 64);
    assert.equal(r.body.details.errors[0].path, `$.parameters.p${'[0]'.repeat(62)}`);
    await assertServing(agent);
  });

  it('accepts a body exactly 64 deep as far as depth goes (the package decides the rest)', async () => {
    const r = await call(
      agent,
      'POST',
      '/validate',
      `{"wpk_content":{"apiVersion":"wpk/v1","metadata":${nestedObjects(62)}}}`,
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.valid, false, 'an invalid package, but not a refused body');
  });

  it('refuses a megabyte of [ on every body-reading route with the path down to level 65', async () => {
    const flood = '['.repeat(1024 * 1024 - 16);
    for (const path of ['/execute', '/validate', '/init']) {
      const r = await call(agent, 'POST', path, flood);
      assert.equal(r.status, 400, path);
      assert.equal(r.body.error_type, 'validation_error', path);
      assert.equal(r.body.details.errors[0].path, `$${'[0]'.repeat(64)}`, path);
    }
    await assertServing(agent);
  });

  it('answers the FlowRunner control API in its own shape: 400 { detail: [{ loc, msg, type: json_too_deep }] }', async () => {
    const r = await agent.request(
      'POST',
      '/api/start',
      `{"config":{"sim_users":1},"flowmap":{"steps":${nestedArrays(70)}}}`,
    );
    assert.equal(r.status, 400);
    assert.equal(r.body.detail.length, 1);
    assert.equal(r.body.detail[0].type, 'json_too_deep');
    assert.deepEqual(r.body.detail[0].loc, ['body', 'flowmap', 'steps', ...Array(62).fill(0)]);
    assert.match(r.body.detail[0].msg, /MAX_JSON_DEPTH/);
    const health = await agent.request('GET', '/api/health');
    assert.equal(health.status, 200);
  });

  it('refuses a YAML package nested too deep before parsing it: 400 on /execute, valid: false on /validate', async () => {
    const name = uniqueName('deep-yaml');
    const yaml = `apiVersion: wpk/v1\nkind: Workflow\nmetadata: { name: ${name}, version: 1.0.0 }\nspec:\n  handlers:\n    - name: a\n      adapter: shell\n      action: run\n      with: { command: [echo], env: ${'['.repeat(200_000)} }\n`;
    const exec = await call(agent, 'POST', '/execute', { wpk_content: yaml });
    assert.equal(exec.status, 400);
    assert.equal(exec.body.error_type, 'validation_error');
    assert.match(exec.body.details.errors[0].message, /deeper than 64 levels \(MAX_JSON_DEPTH\) at line 9, column \d+/);
    const validate = await call(agent, 'POST', '/validate', { wpk_content: yaml });
    assert.equal(validate.status, 200);
    assert.equal(validate.body.valid, false);
    await assertServing(agent);
  });
});

describe('limits: JSON depth of packages sent as YAML text', () => {
  const validator = new PackageValidator(new AdapterRegistry(builtinAdapters()), { maxJsonDepth: 16 });
  const yamlPackage = (withBlock: string) =>
    `apiVersion: wpk/v1\nkind: Workflow\nmetadata: { name: y, version: 1.0.0 }\nspec:\n  handlers:\n    - name: a\n      adapter: shell\n      action: run\n      with:\n${withBlock}`;

  it('counts block nesting as well as flow nesting, and names the line', () => {
    // spec, handlers, [0], with, command: five levels before the block below starts.
    let block = '        command: [echo]\n        env:\n';
    for (let i = 0; i < 14; i++) block += `${' '.repeat(10 + 2 * i)}k${i}:\n`;
    block += `${' '.repeat(38)}leaf: 1\n`;
    const problems = validator.validate(yamlPackage(block)).report.errors;
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(problems[0].message, /deeper than 16 levels \(MAX_JSON_DEPTH\) at line \d+/);
  });

  it('catches depth that only aliases build, with the JSON path', () => {
    // x is at level 6; a0 adds 6 levels as written, and each alias one more: a5 reaches level 17.
    const chain = Array.from({ length: 6 }, (_, i) =>
      i === 0 ? '        a0: &a0 [[[[[[1]]]]]]' : `        a${i}: &a${i} [*a${i - 1}]`,
    ).join('\n');
    const problems = validator.validate(
      yamlPackage(`        command: [echo]\n        x:\n${chain.replace(/^ {8}/gm, '          ')}\n`),
    ).report.errors;
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(problems[0].path, /^\$\.spec\.handlers\[0\]\.with\.x\.a5(\[0\]){10}$/);
    assert.match(problems[0].message, /nested deeper than 16 levels \(MAX_JSON_DEPTH\)/);
  });

  it('refuses a "billion laughs" of aliases instead of expanding it', () => {
    const rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [prev, cur] of [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'd'],
      ['d', 'e'],
      ['e', 'f'],
      ['f', 'g'],
    ])
      rows.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
    const problems = validator.validate(`${rows.join('\n')}\n`).report.errors;
    assert.equal(problems.length, 1);
    assert.match(problems[0].message, /not valid YAML or JSON.*alias/i);
  });
});
