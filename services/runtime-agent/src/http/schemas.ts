/**
 * What the agent's routes answer, as JSON Schemas (TypeBox): the OpenAPI document (openapi.ts) is built from
 * these and from the request schemas the routes check with, and the HTTP specs check every real answer
 * against that document, so neither can drift from what the code sends.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { ERROR_TYPES } from '../../../../adapters/errors.js';
import { DELIVERY_STATES, EVENT_TYPES, EXECUTION_STATUSES, STEP_STATUSES } from '../store/types.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Enum = (values: readonly string[], description?: string) =>
  Type.Unsafe<string>({ type: 'string', enum: [...values], ...(description && { description }) });
const Time = (description?: string) => Type.String({ format: 'date-time', ...(description && { description }) });
const AnyObject = (description?: string) =>
  Type.Object({}, { additionalProperties: true, ...(description && { description }) });
const Closed = <T extends Record<string, TSchema>>(props: T, title: string, description?: string) =>
  Type.Object(props, { additionalProperties: false, title, ...(description && { description }) });

export const ErrorBody = Closed(
  {
    error_type: Enum(ERROR_TYPES),
    message: Type.String(),
    details: AnyObject('validation errors list every problem in `errors`, each with its JSON `path`'),
  },
  'Error',
);

const Problem = Closed({ path: Type.String(), message: Type.String() }, 'Problem');

const ErrorRecord = Type.Object(
  {
    type: Enum(ERROR_TYPES),
    message: Type.String(),
    step: Type.Optional(Nullable(Type.String())),
    details: Type.Optional(AnyObject()),
  },
  { additionalProperties: false, title: 'ErrorRecord' },
);

const RollbackStatus = Enum(['not_started', 'pending', 'running', 'succeeded', 'failed', 'nothing_to_do']);
const RollbackTrigger = Nullable(Enum(['automatic', 'manual', 'recovered']));

const StepView = Type.Object(
  {
    name: Type.String(),
    adapter: Type.String(),
    action: Type.String(),
    status: Enum(STEP_STATUSES),
    attempts: Type.Integer({ minimum: 0 }),
    started_at: Nullable(Time()),
    finished_at: Nullable(Time()),
    input: Nullable(AnyObject('the rendered input, credentials masked')),
    outputs: Nullable(AnyObject()),
    outputs_source: Nullable(Enum(['run', 'dry_run', 'example', 'reused'])),
    error: Nullable(ErrorRecord),
    reason: Type.Optional(Type.String({ description: 'why a step was skipped, not run, or kept by a retry' })),
    compensates: Type.Optional(Nullable(Type.String({ description: 'rollback steps: the main step they undo' }))),
  },
  { additionalProperties: false, title: 'Step' },
);

const summaryFields = {
  execution_id: Type.String(),
  workflow_id: Type.String(),
  status: Enum(EXECUTION_STATUSES),
  dry_run: Type.Boolean(),
  current_step: Nullable(Type.String()),
  steps_completed: Type.Integer({ minimum: 0 }),
  steps_total: Type.Integer({ minimum: 0 }),
  error: Nullable(ErrorRecord),
  created_at: Time(),
  started_at: Nullable(Time()),
  finished_at: Nullable(Time()),
  submitted_by: Nullable(Type.String()),
  retry_of: Nullable(Type.String({ description: 'the execution this one retries' })),
  retried_by: Nullable(Type.String({ description: 'the retry that took over from this execution' })),
};

export const ExecutionSummary = Closed(
  { ...summaryFields, rollback: Closed({ status: RollbackStatus, trigger: RollbackTrigger }, 'RollbackSummary') },
  'ExecutionSummary',
);

const DeliveryView = Closed(
  {
    delivery_id: Type.String({ description: 'the X-Runtime-Agent-Delivery header: the same on every attempt' }),
    kind: Enum(['callback', 'report']),
    event: Type.String({ description: 'execution.<status>' }),
    url: Type.String({ description: 'password and query values masked' }),
    state: Enum(DELIVERY_STATES),
    attempts: Type.Integer({ minimum: 0 }),
    last_error: Nullable(Type.String()),
    last_status: Nullable(Type.Integer()),
    next_attempt_at: Nullable(Time('while pending')),
    created_at: Time(),
    delivered_at: Nullable(Time()),
  },
  'Delivery',
);

const Backlog = Closed(
  {
    pending: Type.Integer({ minimum: 0 }),
    oldest_pending_seconds: Nullable(Type.Integer({ minimum: 0 })),
    delivered: Type.Integer({ minimum: 0 }),
    dead: Type.Integer({ minimum: 0 }),
    gone: Type.Integer({ minimum: 0 }),
  },
  'DeliveryBacklog',
);

export const ExecutionRecord = Closed(
  {
    ...summaryFields,
    workflow_name: Type.String(),
    rollback_on_failure: Type.Boolean(),
    parameters: AnyObject('the values the run used, defaults applied, secrets as ***'),
    steps: Type.Array(StepView),
    rollback: Closed(
      {
        status: RollbackStatus,
        trigger: RollbackTrigger,
        requested_by: Nullable(Type.String()),
        steps: Type.Array(StepView),
      },
      'Rollback',
    ),
    logs: Type.String({ description: 'the path of its log' }),
    logs_truncated: Type.Boolean(),
    dropped_log_lines: Type.Integer({ minimum: 0 }),
    deliveries: Type.Array(DeliveryView, {
      description: 'its results delivered or still to deliver (docs/callbacks.md)',
    }),
  },
  'ExecutionRecord',
);

export const ExecutionList = Closed(
  { executions: Type.Array(ExecutionSummary), next_cursor: Nullable(Type.String()) },
  'ExecutionList',
);

const acceptedFields = {
  execution_id: Type.String(),
  status: Enum(EXECUTION_STATUSES),
  workflow_id: Type.String(),
  dry_run: Type.Boolean(),
};
export const Accepted = Closed(acceptedFields, 'Accepted');
export const RetryAccepted = Closed(
  {
    ...acceptedFields,
    retry_of: Type.String(),
    from_step: Type.String(),
    steps_kept: Type.Integer({ minimum: 0, description: 'steps before from_step, not run again' }),
  },
  'RetryAccepted',
);
export const CancelAnswer = Closed(
  { execution_id: Type.String(), status: Enum(EXECUTION_STATUSES), message: Type.String() },
  'CancelAnswer',
);
export const RollbackAnswer = Closed(
  {
    execution_id: Type.String(),
    status: Enum(EXECUTION_STATUSES),
    rollback: Closed(
      { status: Nullable(RollbackStatus), trigger: RollbackTrigger, requested_by: Nullable(Type.String()) },
      'RollbackStarted',
    ),
  },
  'RollbackAnswer',
);

export const ValidationReport = Closed(
  {
    valid: Type.Boolean(),
    workflow_id: Nullable(Type.String()),
    errors: Type.Array(Problem),
    warnings: Type.Array(Problem),
  },
  'ValidationReport',
);

const LogLine = Closed(
  {
    seq: Type.Integer({ minimum: 1 }),
    ts: Time(),
    level: Enum(['debug', 'info', 'warn', 'error']),
    step: Nullable(Type.String()),
    stream: Nullable(Enum(['stdout', 'stderr', 'agent'])),
    message: Type.String(),
  },
  'LogLine',
);
export const LogPage = Closed(
  { execution_id: Type.String(), logs: Type.Array(LogLine), next_since: Type.Integer({ minimum: 0 }) },
  'LogPage',
);

const JournalEvent = Closed(
  {
    seq: Type.Integer({ minimum: 1 }),
    ts: Time(),
    type: Enum(EVENT_TYPES),
    execution_id: Type.String(),
    workflow_id: Type.String(),
    step: Type.Optional(Type.String()),
    data: AnyObject(),
  },
  'Event',
);
export const EventPage = Closed(
  {
    events: Type.Array(JournalEvent),
    next_since: Type.Integer({ minimum: 0 }),
    last_seq: Type.Integer({
      minimum: 0,
      description: "the journal's newest seq: follow with since=last_seq to see only what happens from now on",
    }),
  },
  'EventPage',
);

const workflowFields = {
  workflow_id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  description: Nullable(Type.String()),
  labels: Type.Record(Type.String(), Type.String()),
  source: Enum(['bundled', 'registered']),
  registered_at: Nullable(Time()),
  signed: Type.Boolean(),
  parameters: Type.Record(Type.String(), AnyObject(), { description: 'definitions; secret defaults as ***' }),
  steps: Type.Array(Type.String()),
  adapters: Type.Array(Type.String()),
  rollback_enabled: Type.Boolean(),
  timeout_seconds: Nullable(Type.Number()),
};
export const WorkflowList = Closed(
  { workflows: Type.Array(Closed(workflowFields, 'WorkflowSummary')) },
  'WorkflowList',
);
export const WorkflowDetail = Closed(
  { ...workflowFields, package: AnyObject('the package as stored, credentials masked') },
  'WorkflowDetail',
);

export const AuditPage = Closed(
  {
    entries: Type.Array(
      Closed(
        {
          seq: Type.Integer({ minimum: 1 }),
          ts: Time(),
          actor: Nullable(Type.String()),
          role: Nullable(Type.String()),
          method: Type.String(),
          path: Type.String(),
          status: Type.Integer(),
          execution_id: Nullable(Type.String()),
          remote: Nullable(Type.String()),
          detail: Nullable(AnyObject()),
        },
        'AuditEntry',
      ),
    ),
    next_since: Type.Integer({ minimum: 0 }),
  },
  'AuditPage',
);

const AdapterView = Type.Object(
  {
    ready: Type.Boolean(),
    configured: Type.Optional(
      Type.Boolean({ description: 'false when the adapter has nothing to be ready with (k8s without a cluster)' }),
    ),
    message: Type.Optional(Type.String()),
    details: Type.Optional(AnyObject()),
    actions: Type.Array(
      Closed({ id: Type.String(), mutates: Type.Boolean(), description: Type.String() }, 'ActionSummary'),
    ),
  },
  { additionalProperties: false, title: 'Adapter' },
);

export const Health = Closed(
  {
    status: Enum(['ok']),
    version: Type.String(),
    uptime_seconds: Type.Integer({ minimum: 0 }),
    active_executions: Type.Integer({ minimum: 0 }),
    queued_executions: Type.Integer({ minimum: 0 }),
    draining: Type.Boolean(),
    pod: Type.Optional(
      Closed(
        { name: Type.String(), namespace: Type.Union([Type.String(), Type.Null()]) },
        'Pod',
        'The pod the agent runs in (POD_NAME and POD_NAMESPACE from the downward API); absent when not set',
      ),
    ),
    deliveries: Closed({ callback: Backlog }, 'Deliveries', 'The outbox of results: result callbacks'),
    adapters: Type.Record(Type.String(), AdapterView),
  },
  'Health',
);
export const Ready = Closed({ ready: Type.Boolean(), reasons: Type.Array(Type.String()) }, 'Ready');
export const InitAnswer = Closed(
  {
    status: Enum(['initialized']),
    adapters: Type.Record(Type.String(), AdapterView),
    bundled_workflows: Type.Array(Type.String()),
  },
  'InitAnswer',
);

/** The FlowRunner control API answers as FastAPI does: an object, or `{ detail }` when it refuses. */
export const FlowAnswer = AnyObject('see docs/flowrunner.md');
export const FlowDetail = Closed(
  {
    detail: Type.Union([
      Type.String(),
      Type.Array(Type.Object({ loc: Type.Array(Type.Union([Type.String(), Type.Integer()])), msg: Type.String() })),
    ]),
  },
  'FlowDetail',
);

export const WhoAmI = Closed(
  {
    name: Type.String({ description: "the token's name; `anonymous` without authentication" }),
    role: Enum(['viewer', 'executor', 'operator', 'admin']),
    authentication: Type.Boolean({ description: 'false when the agent has no tokens file' }),
    may: Closed(
      {
        submit: Type.Boolean(),
        validate: Type.Boolean(),
        cancel: Type.Boolean({ description: "one's own executions" }),
        cancel_any: Type.Boolean(),
        rollback: Type.Boolean(),
        retry: Type.Boolean(),
        audit: Type.Boolean(),
      },
      'Capabilities',
      'what this role may do: a client shows only these actions',
    ),
  },
  'WhoAmI',
);

const Ms = Nullable(Type.Integer({ minimum: 0 }));
export const Overview = Closed(
  {
    since: Time(),
    until: Time(),
    total: Type.Integer({ minimum: 0 }),
    by_status: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
    by_workflow: Type.Array(
      Closed(
        {
          workflow_id: Type.String(),
          runs: Type.Integer({ minimum: 0 }),
          ended: Type.Integer({ minimum: 0 }),
          p50_ms: Ms,
          p95_ms: Ms,
          max_ms: Ms,
        },
        'WorkflowDurations',
      ),
    ),
    truncated: Type.Boolean({ description: 'more executions than one overview reads (100000)' }),
  },
  'Overview',
);
