/**
 * GET /openapi.json: every route the agent mounts is in the document and nothing else is, every schema in it
 * compiles, and the agent serves it (to viewers, when tokens are configured). That real answers match it is
 * checked by every HTTP spec (support/openapi-check.ts).
 */
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { openApiPath } from '../../../services/runtime-agent/src/http/openapi.js';
import { agentOpenApi, buildRouter, type RouteDeps } from '../../../services/runtime-agent/src/http/routes/index.js';
import { useAgentWithTokens } from '../support/agent-process.js';
import { call } from './http-support.js';

interface Op {
  parameters: Array<{ name: string; in: string; schema: object }>;
  requestBody?: { content: Record<string, { schema: object }> };
  responses: Record<string, { content?: Record<string, { schema?: object }> }>;
}

describe('HTTP API: GET /openapi.json', () => {
  const doc = agentOpenApi();
  const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
  );

  it('lists every route the agent mounts, and only those', () => {
    // The router is only mounted here, never called: its handlers do not touch the dependencies.
    const router = buildRouter({ bodyLimitBytes: 1024 } as RouteDeps);
    const mounted = router.stack.flatMap((layer) =>
      layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${openApiPath(String(layer.path))}`),
    );
    assert.ok(mounted.length >= 20, `only ${mounted.length} routes found`);
    assert.deepEqual([...documented].sort(), [...new Set(mounted)].sort());
    assert.ok(documented.includes('POST /execute/{id}/retry'));
  });

  it('is OpenAPI 3.1 whose every schema compiles, with each path parameter declared', () => {
    assert.equal(doc.openapi, '3.1.0');
    const ajv = new Ajv2020({ strict: false });
    ajv.addFormat('date-time', true);
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods as Record<string, Op>)) {
        const where = `${method.toUpperCase()} ${path}`;
        const inPath = op.parameters.filter((p) => p.in === 'path').map((p) => `{${p.name}}`);
        assert.deepEqual(inPath, path.match(/\{\w+\}/g) ?? [], `${where}: path parameters`);
        const schemas = [
          ...op.parameters.map((p) => p.schema),
          ...Object.values(op.requestBody?.content ?? {}).map((c) => c.schema),
          ...Object.values(op.responses).flatMap((r) => Object.values(r.content ?? {}).flatMap((c) => c.schema ?? [])),
        ];
        for (const schema of schemas) assert.doesNotThrow(() => ajv.compile(schema), where);
        assert.ok(op.responses['500'], `${where} lists 500`);
        assert.ok(
          Object.keys(op.responses).some((s) => s.startsWith('2') || s.startsWith('3')),
          `${where} lists a success (or the redirect it always answers)`,
        );
      }
    }
  });

  describe('served by the agent', () => {
    const { agent, token } = useAgentWithTokens({ dashboards: ['viewer'] });

    it('answers the same document to a viewer, and 401 without a token', async () => {
      const viewer = token('dashboards');
      const open = await call(agent, 'GET', '/openapi.json');
      assert.equal(open.status, 401);
      const r = await call(agent, 'GET', '/openapi.json', undefined, { authorization: `Bearer ${viewer}` });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, JSON.parse(JSON.stringify(doc)));
      const bad = await call(agent, 'GET', '/openapi.json?pretty=1', undefined, { authorization: `Bearer ${viewer}` });
      assert.equal(bad.status, 400);
    });
  });
});
