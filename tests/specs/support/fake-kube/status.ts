/**
 * metav1.Status bodies, built the way k8s.io/apimachinery/pkg/api/errors builds them, with the
 * JSON field order Go's encoder produces (kind, apiVersion, metadata, status, message, reason,
 * details, code). Message texts are the apiserver's own.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code?: number;
}

/** An error the server answers with its Status body (and optional extra headers). */
export class ApiError extends Error {
  constructor(
    readonly status: StatusBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
  }
  get code(): number {
    return this.status.code ?? 500;
  }
}

function compactDetails(d: StatusDetails): StatusDetails {
  const out: StatusDetails = {};
  if (d.name) out.name = d.name;
  if (d.group) out.group = d.group;
  if (d.kind) out.kind = d.kind;
  if (d.uid) out.uid = d.uid;
  if (d.causes && d.causes.length > 0) out.causes = d.causes;
  if (d.retryAfterSeconds) out.retryAfterSeconds = d.retryAfterSeconds;
  return out;
}

export function failure(code: number, reason: string, message: string, details?: StatusDetails): StatusBody {
  const body: StatusBody = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason };
  if (details) body.details = compactDetails(details);
  body.code = code;
  return body;
}

export function success(details: StatusDetails, code?: number): StatusBody {
  const body: StatusBody = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: compactDetails(details),
  };
  if (code !== undefined) body.code = code;
  return body;
}

/** schema.GroupResource.String(): "deployments.apps", or "pods" for the core group. */
export function groupResource(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

/** schema.GroupKind.String(): "Deployment.apps", or "Pod" for the core group. */
export function groupKind(group: string, kind: string): string {
  return group ? `${kind}.${group}` : kind;
}

export const OBJECT_MODIFIED =
  'the object has been modified; please apply your changes to the latest version and try again';

/** A failure about one object: its details name it, its group and, as the API server does, its resource as kind. */
function objectError(code: number, reason: string, message: string, group: string, resource: string, name: string) {
  return new ApiError(failure(code, reason, message, { name, group, kind: resource }));
}

export const err = {
  notFound(group: string, resource: string, name: string): ApiError {
    return objectError(404, 'NotFound', `${groupResource(group, resource)} "${name}" not found`, group, resource, name);
  },
  /** A path no handler serves (errors.NewNotFound-style body the mux answers with). */
  noRoute(): ApiError {
    return new ApiError(failure(404, 'NotFound', 'the server could not find the requested resource', {}));
  },
  alreadyExists(group: string, resource: string, name: string): ApiError {
    const message = `${groupResource(group, resource)} "${name}" already exists`;
    return objectError(409, 'AlreadyExists', message, group, resource, name);
  },
  conflict(group: string, resource: string, name: string, why: string = OBJECT_MODIFIED): ApiError {
    const message = `Operation cannot be fulfilled on ${groupResource(group, resource)} "${name}": ${why}`;
    return objectError(409, 'Conflict', message, group, resource, name);
  },
  /** A delete or patch precondition (the object's UID or ResourceVersion) that the stored object does not meet. */
  preconditionFailed(
    group: string,
    resource: string,
    name: string,
    field: 'UID' | 'ResourceVersion',
    wanted: string,
    actual: string | undefined,
  ): ApiError {
    const why = `Precondition failed: ${field} in precondition: ${wanted}, ${field} in object meta: ${actual}`;
    return err.conflict(group, resource, name, why);
  },
  /** errors.NewApplyConflict: server-side apply field-manager conflicts. */
  applyConflict(causes: StatusCause[], message: string): ApiError {
    return new ApiError(failure(409, 'Conflict', message, { causes }));
  },
  forbidden(group: string, resource: string, name: string, why: string): ApiError {
    const subject = name ? `${groupResource(group, resource)} "${name}"` : groupResource(group, resource);
    return objectError(403, 'Forbidden', `${subject} is forbidden: ${why}`, group, resource, name);
  },
  invalid(group: string, kind: string, name: string, errors: FieldError[]): ApiError {
    const causes = errors.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field }));
    const list = errors.map(fieldErrorString);
    const aggregate = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
    return new ApiError(
      failure(422, 'Invalid', `${groupKind(group, kind)} "${name}" is invalid: ${aggregate}`, {
        name,
        group,
        kind,
        causes,
      }),
    );
  },
  /** 422 from an options struct (PatchOptions, CreateOptions, ...), which lives in meta.k8s.io and has no name. */
  invalidOptions(kind: string, errors: FieldError[]): ApiError {
    return err.invalid('meta.k8s.io', kind, '', errors);
  },
  /** errors.NewGenericServerResponse(422, ...): what a json-patch that fails to apply gets. */
  unprocessable(serverMessage: string): ApiError {
    return new ApiError(
      failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {
        causes: [{ reason: 'UnexpectedServerResponse', message: serverMessage }],
      }),
    );
  },
  badRequest(message: string): ApiError {
    return new ApiError(failure(400, 'BadRequest', message));
  },
  unauthorized(): ApiError {
    return new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
  },
  methodNotAllowed(): ApiError {
    return new ApiError(
      failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}),
    );
  },
  unsupportedMediaType(accepted: string[]): ApiError {
    return new ApiError(
      failure(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
      ),
    );
  },
  /** 410 with reason Expired: what a watch (or continue token) from a compacted resourceVersion gets. */
  expired(message: string): ApiError {
    return new ApiError(failure(410, 'Expired', message));
  },
  gone(message: string): ApiError {
    return new ApiError(failure(410, 'Gone', message));
  },
  tooManyRequests(message = 'Too many requests, please try again later.', retryAfterSeconds = 1): ApiError {
    return new ApiError(failure(429, 'TooManyRequests', message, { retryAfterSeconds }), {
      'Retry-After': String(retryAfterSeconds),
    });
  },
  internal(message: string): ApiError {
    return new ApiError(
      failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }),
    );
  },
  serviceUnavailable(message = 'the server is currently unable to handle the request'): ApiError {
    return new ApiError(failure(503, 'ServiceUnavailable', message));
  },
};

/** Reason and default message for an injected failure code, as the apiserver spells them. */
export function statusForCode(code: number, reason?: string, message?: string, retryAfterSeconds?: number): ApiError {
  switch (code) {
    case 429:
      return err.tooManyRequests(message, retryAfterSeconds ?? 1);
    case 500:
      if (!reason && !message) return err.internal('injected failure');
      break;
    case 503:
      if (!reason && !message) return err.serviceUnavailable();
      break;
  }
  const defaults: Record<number, [string, string]> = {
    400: ['BadRequest', 'the server rejected our request for an unknown reason'],
    401: ['Unauthorized', 'Unauthorized'],
    403: ['Forbidden', 'forbidden'],
    404: ['NotFound', 'the server could not find the requested resource'],
    405: ['MethodNotAllowed', 'the server does not allow this method on the requested resource'],
    409: ['Conflict', 'the server reported a conflict'],
    410: ['Gone', 'the resource is no longer available'],
    422: ['Invalid', 'the server rejected our request due to an error in our request'],
    500: ['InternalError', 'an error on the server ("") has prevented the request from succeeding'],
    503: ['ServiceUnavailable', 'the server is currently unable to handle the request'],
    504: [
      'Timeout',
      'the server was unable to return a response in the time allotted, but may still be processing the request',
    ],
  };
  const [defReason, defMessage] = defaults[code] ?? [
    'Unknown',
    `the server responded with the status code ${code} but did not return more information`,
  ];
  const headers: Record<string, string> = retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {};
  const details = retryAfterSeconds ? { retryAfterSeconds } : undefined;
  return new ApiError(failure(code, reason ?? defReason, message ?? defMessage, details), headers);
}

// ---------------------------------------------------------------------------------------------
// field.Error (k8s.io/apimachinery/pkg/util/validation/field) and its string forms.

export type FieldErrorType =
  | 'FieldValueInvalid'
  | 'FieldValueRequired'
  | 'FieldValueNotSupported'
  | 'FieldValueForbidden'
  | 'FieldValueDuplicate'
  | 'FieldValueTooLong';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  value?: unknown;
  detail?: string;
  /** For NotSupported: the allowed values. */
  supported?: string[];
}

/** Go's %#v-ish rendering of a bad value, as field.Error prints it. */
export function goValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v) && v.every((x) => typeof x === 'string'))
    return `[]string{${v.map((x) => JSON.stringify(x)).join(', ')}}`;
  return JSON.stringify(v);
}

export function fieldErrorBody(e: FieldError): string {
  switch (e.type) {
    case 'FieldValueRequired':
      return e.detail ? `Required value: ${e.detail}` : 'Required value';
    case 'FieldValueForbidden':
      return e.detail ? `Forbidden: ${e.detail}` : 'Forbidden';
    case 'FieldValueNotSupported': {
      const base = `Unsupported value: ${goValue(e.value)}`;
      return e.supported && e.supported.length > 0
        ? `${base}: supported values: ${e.supported.map((s) => JSON.stringify(s)).join(', ')}`
        : base;
    }
    case 'FieldValueDuplicate':
      return `Duplicate value: ${goValue(e.value)}`;
    case 'FieldValueTooLong':
      return `Too long: ${e.detail ?? ''}`.trim();
    default:
      return e.detail ? `Invalid value: ${goValue(e.value)}: ${e.detail}` : `Invalid value: ${goValue(e.value)}`;
  }
}

export function fieldErrorString(e: FieldError): string {
  return `${e.field}: ${fieldErrorBody(e)}`;
}

export const fieldErr = {
  invalid: (field: string, value: unknown, detail?: string): FieldError => ({
    type: 'FieldValueInvalid',
    field,
    value,
    detail,
  }),
  required: (field: string, detail?: string): FieldError => ({ type: 'FieldValueRequired', field, detail }),
  notSupported: (field: string, value: unknown, supported: string[]): FieldError => ({
    type: 'FieldValueNotSupported',
    field,
    value,
    supported,
  }),
  forbidden: (field: string, detail?: string): FieldError => ({ type: 'FieldValueForbidden', field, detail }),
  duplicate: (field: string, value: unknown): FieldError => ({ type: 'FieldValueDuplicate', field, value }),
};
