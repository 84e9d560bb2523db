/** Output-schema pieces the k8s actions share: an object as the API server has it, and a resolved target. */
import { type Static, Type } from '@sinclair/typebox';
import { Nullable } from '../shared/schemas.js';

/** Any Kubernetes object as plain JSON (every field kept; a Secret's values masked). */
export const KubeObject = Type.Object(
  {
    apiVersion: Type.Optional(Type.String()),
    kind: Type.Optional(Type.String()),
    metadata: Type.Optional(
      Type.Object({ name: Type.Optional(Type.String()), namespace: Type.Optional(Type.String()) }),
    ),
  },
  { description: 'a Kubernetes object as plain JSON' },
);

/** What a write recorded of the object before it: a copy to put back, or null (it did not exist, or is not recorded). */
export const Previous = Nullable(KubeObject);

/** A target with its apiVersion filled in, and its namespace when (and only when) the kind is namespaced. */
export const Target = Type.Object(
  {
    apiVersion: Type.String(),
    kind: Type.String(),
    namespace: Type.Optional(Type.String()),
    name: Type.String(),
  },
  { additionalProperties: false },
);
export type Target = Static<typeof Target>;

/** What apply and patch output: the object as the write left it, and what it recorded of it before. */
export const ChangeOutputProperties = {
  previous: Previous,
  recorded: Type.Boolean({
    description: 'False for a Secret: its contents are never recorded, and there is no compensation.',
  }),
  object: KubeObject,
  target: Target,
};
