/** Packages: validation, and the catalog of bundled and registered ones. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf } from '../auth.js';
import type { RouteDoc } from '../openapi.js';
import { bodySchema, NoQuery } from '../request.js';
import { ErrorBody, ValidationReport, WorkflowDetail, WorkflowList } from '../schemas.js';
import type { RouteDeps } from './deps.js';

export const PackageFields = {
  workflow_id: Type.Optional(Type.String({ description: 'A package the agent knows (bundled or registered)' })),
  wpk_content: Type.Optional(Type.Unknown({ description: 'The package: an object, or YAML or JSON text' })),
  parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
};

const ValidateBody = bodySchema(Type.Object(PackageFields, { additionalProperties: false }));

export const packageRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/validate',
    summary: 'Validates a package (and parameters) without running it',
    needs: 'validate',
    body: ValidateBody.schema,
    responses: {
      200: { description: 'the report: valid or not, every problem with its path', schema: ValidationReport },
      404: { description: 'no known package has that workflow_id', schema: ErrorBody },
    },
  },
  {
    method: 'get',
    path: '/workflows',
    summary: 'The catalog: bundled and registered packages with their parameters',
    needs: 'read',
    responses: { 200: { description: 'by name, newest version first', schema: WorkflowList } },
  },
  {
    method: 'get',
    path: '/workflows/:workflow_id',
    summary: 'One package, as stored (secret defaults and credentials masked)',
    needs: 'read',
    responses: {
      200: { description: 'the package', schema: WorkflowDetail },
      404: { description: 'no such workflow', schema: ErrorBody },
    },
  },
];

export function mountPackageRoutes(router: Router, { service, bodyLimitBytes }: RouteDeps): void {
  router.post('/validate', need('validate'), async (ctx) => {
    const { value } = await ValidateBody(ctx, bodyLimitBytes);
    ctx.body = service.validate(principalOf(ctx), value);
  });

  router.get('/workflows', need('read'), (ctx) => {
    NoQuery(ctx);
    ctx.body = service.workflows(principalOf(ctx));
  });

  router.get('/workflows/:workflow_id', need('read'), (ctx) => {
    NoQuery(ctx);
    ctx.body = service.workflow(principalOf(ctx), ctx.params.workflow_id);
  });
}
