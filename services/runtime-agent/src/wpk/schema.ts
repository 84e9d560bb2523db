/**
 * The one machine-readable definition of WPK v1: an envelope plus every
 * adapter action's input schema. `npm run schema` writes it to
 * workflows/wpk-v1.schema.json for editors; a test keeps that file in step.
 */
import { MAX_TIMER_MS, MAX_TIMER_SECONDS } from '../../../../adapters/shared/timers.js';
import type { Adapter, JsonSchema } from '../../../../adapters/contract.js';
import { OPERATORS } from '../../../../adapters/shared/conditions.js';
import { PACKAGE_LIMITS } from './types.js';

export const SCHEMA_FILE = 'workflows/wpk-v1.schema.json';
const TEMPLATE_COMMENT = 'wpk-template';

/** A string holding at least one `${{ … }}`: stands in for any value until run time. */
export const TEMPLATE_SCHEMA: JsonSchema = { $comment: TEMPLATE_COMMENT, type: 'string', pattern: '\\$\\{\\{' };

export function isTemplateBranch(schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && (schema as JsonSchema).$comment === TEMPLATE_COMMENT;
}

const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs'];
const SUBSCHEMA_ONE = ['items', 'additionalProperties', 'not', 'contains', 'propertyNames'];
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];

/**
 * Lets any value in an action input be a template string, so that a package
 * validates before its templates are rendered (the rendered input is checked
 * again against the strict schema at run time).
 */
export function allowTemplates(schema: JsonSchema): JsonSchema {
  // `true` / `false` schemas (as in `properties: { name: true }`) accept anything or nothing: nothing to wrap.
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: JsonSchema = { ...schema };
  for (const key of SUBSCHEMA_MAPS) {
    const map = schema[key] as Record<string, JsonSchema> | undefined;
    if (map) out[key] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, allowTemplates(v)]));
  }
  for (const key of SUBSCHEMA_ONE) {
    const sub = schema[key];
    if (sub && typeof sub === 'object' && key !== 'propertyNames' && key !== 'not')
      out[key] = allowTemplates(sub as JsonSchema);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = schema[key] as JsonSchema[] | undefined;
    if (list) out[key] = list.map(allowTemplates);
  }
  const constrains = ['type', 'enum', 'const', 'pattern', 'minimum', 'maximum', 'minLength', 'format'].some(
    (k) => k in schema,
  );
  if (!constrains) return out;
  const { description, default: dflt, ...rest } = out;
  const wrapped: JsonSchema = { anyOf: [rest, TEMPLATE_SCHEMA] };
  if (description !== undefined) wrapped.description = description;
  if (dflt !== undefined) wrapped.default = dflt;
  return wrapped;
}

/** A compensation may run twice: after a crash, one that was interrupted runs again unless it says it must not. */
const IDEMPOTENT: JsonSchema = {
  type: 'boolean',
  default: true,
  description:
    'false: this compensation must not run twice; when a crash interrupts it, recovery marks it abandoned instead of running it again',
};

const NAME_PATTERN = '^[a-z0-9][a-z0-9_-]*$';

function paramSchema(): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: {
      type: { enum: ['string', 'integer', 'number', 'boolean', 'array', 'object'], description: 'Value type' },
      required: { type: 'boolean' },
      default: { description: 'Used when the caller gives no value; must match type' },
      enum: { type: 'array', minItems: 1 },
      pattern: { type: 'string', description: 'Regular expression a string value must match' },
      minimum: { type: 'number' },
      maximum: { type: 'number' },
      secret: { type: 'boolean', description: 'Shown as *** in records, logs and errors; never stored' },
      description: { type: 'string' },
    },
  };
}

function retriesSchema(): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['count'],
    description: 'Extra attempts after the first; delay = delayMs * backoff^(attempt-1), capped by maxDelayMs',
    properties: {
      count: { type: 'integer', minimum: 0, maximum: 100 },
      delayMs: { type: 'integer', minimum: 0, maximum: MAX_TIMER_MS, default: 1000 },
      backoff: { type: 'number', minimum: 1, default: 2 },
      maxDelayMs: { type: 'integer', minimum: 0, maximum: MAX_TIMER_MS, default: 60000 },
    },
  };
}

function whenSchema(): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['variable', 'operator'],
    properties: {
      variable: {
        type: 'string',
        minLength: 1,
        description: 'A path such as params.enabled or steps.check.outputs.status',
      },
      operator: { enum: [...OPERATORS] },
      value: { description: 'Compared against the variable; may hold ${{ }} templates' },
    },
  };
}

/** The envelope: everything but the per-action `with` schemas. */
export function envelopeSchema(adapterNames: string[]): JsonSchema {
  const stepProps = {
    name: { type: 'string', pattern: NAME_PATTERN, maxLength: 63, description: 'Unique step name' },
    adapter: { enum: adapterNames, description: 'Adapter that runs the action' },
    action: { type: 'string', minLength: 1, description: 'An action the adapter declares' },
    with: { type: 'object', description: "The action's input; strings may hold ${{ }} templates" },
    when: { $ref: '#/$defs/when' },
    timeoutSeconds: {
      type: 'number',
      exclusiveMinimum: 0,
      maximum: MAX_TIMER_SECONDS,
      description: 'Deadline of each attempt',
    },
    retries: { $ref: '#/$defs/retries' },
    onFailure: { enum: ['stop', 'continue'], default: 'stop' },
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'wpk-v1.schema.json',
    title: 'WPK v1 workflow package',
    type: 'object',
    additionalProperties: false,
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'wpk/v1' },
      kind: { const: 'Workflow' },
      metadata: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'version'],
        properties: {
          name: {
            type: 'string',
            pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
            maxLength: 63,
            description: 'DNS-1123 label',
          },
          version: {
            type: 'string',
            pattern: '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-[0-9A-Za-z.-]+)?(?:\\+[0-9A-Za-z.-]+)?$',
            description: 'Semantic version',
          },
          description: { type: 'string' },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
      spec: {
        type: 'object',
        additionalProperties: false,
        required: ['handlers'],
        properties: {
          parameters: {
            type: 'object',
            maxProperties: PACKAGE_LIMITS.maxParameters,
            propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
            additionalProperties: { $ref: '#/$defs/parameter' },
          },
          timeoutSeconds: {
            type: 'number',
            exclusiveMinimum: 0,
            maximum: MAX_TIMER_SECONDS,
            description: 'Deadline of the whole run, retries included',
          },
          handlers: {
            type: 'array',
            minItems: 1,
            maxItems: PACKAGE_LIMITS.maxHandlers,
            items: { $ref: '#/$defs/step' },
          },
          rollback: {
            type: 'object',
            additionalProperties: false,
            properties: {
              enabled: {
                type: 'boolean',
                default: false,
                description: 'Run rollback automatically when the run fails',
              },
              handlers: {
                type: 'array',
                maxItems: PACKAGE_LIMITS.maxRollbackHandlers,
                items: { $ref: '#/$defs/rollbackHandler' },
              },
            },
          },
        },
      },
    },
    $defs: {
      parameter: paramSchema(),
      retries: retriesSchema(),
      when: whenSchema(),
      step: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'adapter', 'action'],
        properties: {
          ...stepProps,
          rollback: {
            description: "This step's compensation; 'none' opts out of the action's default one",
            anyOf: [{ const: 'none' }, { $ref: '#/$defs/stepRollback' }],
          },
        },
      },
      rollbackHandler: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'adapter', 'action'],
        properties: { ...stepProps, idempotent: IDEMPOTENT },
      },
      stepRollback: {
        type: 'object',
        additionalProperties: false,
        required: ['action'],
        properties: {
          adapter: { enum: adapterNames, description: "Defaults to the step's adapter" },
          action: { type: 'string', minLength: 1 },
          with: { type: 'object' },
          timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: MAX_TIMER_SECONDS },
          retries: { $ref: '#/$defs/retries' },
          idempotent: IDEMPOTENT,
        },
      },
    },
  };
}

export function actionDefName(adapter: string, action: string): string {
  return `action.${adapter}.${action}`;
}

/** The published schema: the envelope plus each action's (template-tolerant) input schema. */
export function buildPublishedSchema(adapters: Adapter[]): JsonSchema {
  const schema = envelopeSchema(adapters.map((a) => a.name));
  const defs = schema.$defs as Record<string, JsonSchema>;
  const rules: JsonSchema[] = [];
  for (const adapter of adapters) {
    rules.push({
      if: { required: ['adapter'], properties: { adapter: { const: adapter.name } } },
      then: { properties: { action: { enum: Object.keys(adapter.actions) } } },
    });
    for (const [id, action] of Object.entries(adapter.actions)) {
      defs[actionDefName(adapter.name, id)] = { description: action.description, ...allowTemplates(action.input) };
      rules.push({
        if: {
          required: ['adapter', 'action'],
          properties: { adapter: { const: adapter.name }, action: { const: id } },
        },
        then: { properties: { with: { $ref: `#/$defs/${actionDefName(adapter.name, id)}` } } },
      });
    }
  }
  for (const def of ['step', 'rollbackHandler']) defs[def] = { ...defs[def], allOf: rules };
  return schema;
}
