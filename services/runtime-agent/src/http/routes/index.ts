/**
 * The agent's HTTP API, one module per resource; the FlowRunner control API (`/api/*`) is mounted from
 * flowrunner-api.ts. Every handler parses its request, calls the service and answers.
 */
import { Router } from '@koa/router';
import { need } from '../auth.js';
import { mountFlowRunnerApi } from '../flowrunner-api.js';
import { mountAgentRoutes } from './agent.js';
import { mountAuditRoutes } from './audit.js';
import type { RouteDeps } from './deps.js';
import { mountEventRoutes } from './events.js';
import { mountExecutionRoutes } from './executions.js';
import { mountLogRoutes } from './logs.js';
import { mountPackageRoutes } from './packages.js';

export type { RouteDeps } from './deps.js';

export function buildRouter(deps: RouteDeps): Router {
  const router = new Router();
  mountAgentRoutes(router, deps);
  mountPackageRoutes(router, deps);
  mountExecutionRoutes(router, deps);
  mountLogRoutes(router, deps);
  mountEventRoutes(router, deps);
  mountAuditRoutes(router, deps);
  mountFlowRunnerApi(router, {
    flows: deps.flows,
    system: deps.system,
    bodyLimitBytes: deps.bodyLimitBytes,
    guard: need('flowrunner'),
  });
  return router;
}
