/**
 * Every answer an HTTP spec receives is checked against the agent's OpenAPI document: the route must be in
 * it, the status must be one its operation lists, and a JSON body must match that answer's schema. The
 * document can then not drift from what the agent sends.
 */
import assert from 'node:assert/strict';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { agentOpenApi } from '../../../services/runtime-agent/src/http/routes/index.js';

interface DocAnswer {
  description: string;
  content?: Record<string, { schema?: unknown }>;
}
interface DocOperation {
  responses: Record<string, DocAnswer>;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);

const operations = Object.entries(agentOpenApi().paths).flatMap(([path, methods]) =>
  Object.entries(methods as Record<string, DocOperation>).map(([method, op]) => ({
    // The router matches case-insensitively and with or without a trailing slash.
    re: new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}/?$`, 'i'),
    method,
    path,
    op,
  })),
);
const compiled = new Map<unknown, ValidateFunction>();

/** The operation of the document that `method path` reaches, if any. */
export function findOperation(method: string, path: string) {
  const m = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
  const pathname = path.split('?')[0];
  // An exact path first: /ui/ and /ui are two routes, and each pattern allows a trailing slash.
  return (
    operations.find((o) => o.method === m && o.path === pathname) ??
    operations.find((o) => o.method === m && o.re.test(pathname))
  );
}

/** Asserts that the answer to `method path` is one the OpenAPI document describes. */
export function checkAnswer(
  method: string,
  path: string,
  reply: { status: number; headers: Headers; body: unknown; text: string },
): void {
  const what = `${method} ${path} answered ${reply.status}`;
  if (!['GET', 'HEAD', 'POST'].includes(method.toUpperCase())) return;
  const found = findOperation(method, path);
  if (!found) {
    assert.ok([401, 404, 405].includes(reply.status), `${what}, but the OpenAPI document has no such operation`);
    return;
  }
  const answer = found.op.responses[String(reply.status)];
  assert.ok(
    answer,
    `${what}, a status that ${found.method.toUpperCase()} ${found.path} does not list in the OpenAPI document`,
  );
  const type = reply.headers.get('content-type')?.split(';')[0].trim();
  if (method.toUpperCase() === 'HEAD' || type !== 'application/json') return;
  const schema = answer.content?.['application/json']?.schema;
  if (schema === undefined) return;
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema as object);
    compiled.set(schema, validate);
  }
  assert.ok(
    validate(reply.body),
    `${what} with a body that does not match the OpenAPI document: ${ajv.errorsText(validate.errors)}\n${reply.text.slice(0, 2000)}`,
  );
}
