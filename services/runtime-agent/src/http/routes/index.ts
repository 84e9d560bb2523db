/**
 * The agent's HTTP API, one module per resource, and the web console's files (console.ts); the FlowRunner
 * control API (`/api/*`) is mounted from flowrunner-api.ts. Every handler parses its request, calls the
 * service and answers. Each module declares its routes for the OpenAPI document (GET /openapi.json) next
 * to their handlers.
 */
import { Router } from '@koa/router';
import { VERSION } from '../../paths.js';
import { need } from '../auth.js';
import { flowRunnerRouteDocs, mountFlowRunnerApi } from '../flowrunner-api.js';
import { openApiDocument, type RouteDoc } from '../openapi.js';
import { NoQuery } from '../request.js';
import { agentRouteDocs, mountAgentRoutes } from './agent.js';
import { auditRouteDocs, mountAuditRoutes } from './audit.js';
import { consoleRouteDocs, mountConsoleRoutes } from './console.js';
import type { RouteDeps } from './deps.js';
import { eventRouteDocs, mountEventRoutes } from './events.js';
import { executionRouteDocs, mountExecutionRoutes } from './executions.js';
import { logRouteDocs, mountLogRoutes } from './logs.js';
import { mountPackageRoutes, packageRouteDocs } from './packages.js';

export type { RouteDeps } from './deps.js';

const openApiRouteDoc: RouteDoc = {
  method: 'get',
  path: '/openapi.json',
  summary: 'This document: OpenAPI 3.1 of every route',
  needs: 'read',
  responses: { 200: { description: 'the document', contentType: 'application/json' } },
};

/** Every route the agent serves, as the OpenAPI document shows it. */
export const ROUTE_DOCS: RouteDoc[] = [
  ...agentRouteDocs,
  ...packageRouteDocs,
  ...executionRouteDocs,
  ...logRouteDocs,
  ...eventRouteDocs,
  ...auditRouteDocs,
  openApiRouteDoc,
  ...consoleRouteDocs,
  ...flowRunnerRouteDocs,
];

let document: ReturnType<typeof openApiDocument> | undefined;

/** The OpenAPI document of the agent's routes (built once). */
export function agentOpenApi(): ReturnType<typeof openApiDocument> {
  document ??= openApiDocument(ROUTE_DOCS, VERSION);
  return document;
}

export function buildRouter(deps: RouteDeps): Router {
  const router = new Router();
  mountAgentRoutes(router, deps);
  mountPackageRoutes(router, deps);
  mountExecutionRoutes(router, deps);
  mountLogRoutes(router, deps);
  mountEventRoutes(router, deps);
  mountAuditRoutes(router, deps);
  mountConsoleRoutes(router);
  router.get('/openapi.json', need('read'), (ctx) => {
    NoQuery(ctx);
    ctx.body = agentOpenApi();
  });
  mountFlowRunnerApi(router, {
    flows: deps.flows,
    system: deps.system,
    bodyLimitBytes: deps.bodyLimitBytes,
    guard: need('flowrunner'),
  });
  return router;
}
