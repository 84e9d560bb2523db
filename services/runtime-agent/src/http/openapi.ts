/**
 * GET /openapi.json: an OpenAPI 3.1 document of every route, built from what the route modules declare next
 * to their handlers: the request schemas they check with (request.ts) and the answers they give
 * (schemas.ts). A spec checks that every mounted route is in it, and the HTTP specs check every real
 * answer against it.
 */
import type { TObject, TSchema } from '@sinclair/typebox';
import { OPERATIONS, type Operation } from '../auth/roles.js';
import { ErrorBody } from './schemas.js';

/** One answer of a route: its description, and its JSON schema (or another content type). */
export interface Answer {
  description: string;
  schema?: TSchema;
  /** Default application/json. */
  contentType?: string;
  /** A second form of the same status (a server-sent event stream with follow=true). */
  stream?: string;
}

/** A route as the document shows it. */
export interface RouteDoc {
  method: 'get' | 'post';
  /** As mounted: `/execute/:id`. */
  path: string;
  summary: string;
  /** What the caller needs (auth/roles.ts); absent: open to anyone who can reach the agent. */
  needs?: Operation;
  query?: TObject;
  body?: TObject;
  /** The body may be left out (it is read as `{}`). */
  bodyOptional?: boolean;
  /** The answers besides the ones every route may give (400 for a bad request, 401/403, 500). */
  responses: Record<number, Answer>;
  /** The shape of its error answers, when not the agent's `{ error_type, message, details }`. */
  errorSchema?: TSchema;
}

/** `/execute/:id` → `/execute/{id}` */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

function parameters(route: RouteDoc): unknown[] {
  const inPath = [...route.path.matchAll(/:(\w+)/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const props = (route.query?.properties ?? {}) as Record<string, TSchema>;
  const inQuery = Object.entries(props).map(([name, schema]) => ({
    name,
    in: 'query',
    required: false,
    ...(schema.description && { description: schema.description }),
    ...(schema.type === 'array' && { style: 'form', explode: true }),
    schema: plain(schema),
  }));
  return [...inPath, ...inQuery];
}

/** A TypeBox schema as plain JSON Schema (TypeBox marks its objects with symbols, which JSON drops anyway). */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema));
}

function content(answer: Answer): Record<string, unknown> | undefined {
  const forms: Record<string, unknown> = {};
  if (answer.schema || answer.contentType) {
    forms[answer.contentType ?? 'application/json'] = answer.schema ? { schema: plain(answer.schema) } : {};
  }
  if (answer.stream) forms['text/event-stream'] = { schema: { type: 'string', description: answer.stream } };
  return Object.keys(forms).length ? forms : undefined;
}

function operation(route: RouteDoc) {
  const errorAnswer = (description: string): Answer => ({ description, schema: route.errorSchema ?? ErrorBody });
  const responses: Record<string, Answer> = {};
  if (route.query || route.body) responses[400] = errorAnswer('the request is invalid: every problem, with its path');
  else responses[400] = errorAnswer('an unknown query parameter');
  if (route.needs) {
    responses[401] = errorAnswer('no valid token (tokens configured)');
    responses[403] = errorAnswer(`the token's role is below ${OPERATIONS[route.needs]}`);
  }
  if (route.body) responses[413] = errorAnswer('the body is larger than BODY_LIMIT_BYTES');
  responses[500] = errorAnswer('an unexpected error; details.incident names it in the agent log');
  for (const [status, answer] of Object.entries(route.responses)) responses[status] = answer;
  return {
    operationId: `${route.method}${openApiPath(route.path)
      .replace(/[{}]/g, '')
      .replace(/\/(\w)/g, (_, c: string) => c.toUpperCase())
      .replace(/\W/g, '')}`,
    summary: route.summary,
    ...(route.needs && { 'x-role': OPERATIONS[route.needs], security: [{ bearer: [] }] }),
    parameters: parameters(route),
    ...(route.body && {
      requestBody: {
        required: route.bodyOptional !== true,
        content: { 'application/json': { schema: plain(route.body) } },
      },
    }),
    responses: Object.fromEntries(
      Object.entries(responses).map(([status, answer]) => {
        const body = content(answer);
        return [status, { description: answer.description, ...(body && { content: body }) }];
      }),
    ),
  };
}

/** The OpenAPI 3.1 document of `routes`. */
export function openApiDocument(routes: RouteDoc[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Runtime Agent',
      version,
      description:
        'Validates and runs workflow packages (WPK) with rollback, dry run, durable state and an event journal. ' +
        'Errors are { error_type, message, details } (the FlowRunner control API under /api answers { detail }).',
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'a token of the tokens file; x-role names the role needed',
        },
      },
    },
    paths,
  };
}
