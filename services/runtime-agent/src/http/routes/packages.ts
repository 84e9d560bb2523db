/** Packages: validation, and the catalog of bundled and registered ones. */
import { Type } from '@sinclair/typebox';
import type { Router } from '@koa/router';
import { need, principalOf } from '../auth.js';
import { bodySchema, NoQuery } from '../request.js';
import type { RouteDeps } from './deps.js';

export const PackageFields = {
  workflow_id: Type.Optional(Type.String({ description: 'A package the agent knows (bundled or registered)' })),
  wpk_content: Type.Optional(Type.Unknown({ description: 'The package: an object, or YAML or JSON text' })),
  parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
};

const ValidateBody = bodySchema(Type.Object(PackageFields, { additionalProperties: false }));

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
