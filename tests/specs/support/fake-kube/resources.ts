/**
 * The resource types the fake serves, with what discovery says about them and the parts of the
 * apiserver's registry strategies the fake reproduces: defaulting, validation, which field
 * labels a field selector may use, generation semantics, status and scale subresources.
 */
import type { KObj } from './json.js';
import { isObject } from './json.js';
import { fieldErr, type FieldError } from './status.js';
import { labelSelectorToString, matchesLabels, parseLabelSelector } from './selectors.js';

export interface ResourceDef {
  group: string;
  version: string;
  /** Plural resource name, as in the URL. */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  /**
   * Subresources served: `status`, `scale` (autoscaling/v1 Scale), `log` (pods); `proxy` and `portforward` are
   * listed in discovery but served by proxy.ts / portforward.ts.
   */
  subresources: Array<'status' | 'scale' | 'log' | 'proxy' | 'portforward'>;
  /** When metadata.generation is bumped: never, on spec changes, or on spec+annotation changes (Deployment). */
  generation: false | 'spec' | 'spec+annotations';
  /** genericregistry.Store.ReturnDeletedObject: DELETE answers with the object instead of a Status. */
  returnDeletedObject: boolean;
  /** Field labels a fieldSelector may use, beyond metadata.name and metadata.namespace. */
  fieldLabels: Record<string, (o: KObj) => string | undefined>;
  defaults?: (o: KObj) => void;
  validate?: (o: KObj, old?: KObj) => FieldError[];
}

export function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

// ---------------------------------------------------------------------------------------------
// validation helpers (k8s.io/apimachinery/pkg/util/validation)

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateObjectMeta(
  o: KObj,
  namespaced: boolean,
  nameRule: 'subdomain' | 'label' = 'subdomain',
): FieldError[] {
  const errs: FieldError[] = [];
  const m = o.metadata ?? {};
  if (!m.name) errs.push(fieldErr.required('metadata.name', 'name or generateName is required'));
  else if (nameRule === 'subdomain') {
    if (m.name.length > 253)
      errs.push(fieldErr.invalid('metadata.name', m.name, 'must be no more than 253 characters'));
    else if (!DNS1123_SUBDOMAIN.test(m.name))
      errs.push(
        fieldErr.invalid(
          'metadata.name',
          m.name,
          `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
        ),
      );
  } else if (m.name.length > 63 || !DNS1123_LABEL.test(m.name)) {
    errs.push(
      fieldErr.invalid(
        'metadata.name',
        m.name,
        `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
      ),
    );
  }
  if (namespaced && !m.namespace) errs.push(fieldErr.required('metadata.namespace'));
  for (const v of Object.values(m.labels ?? {})) {
    if (typeof v !== 'string') errs.push(fieldErr.invalid(`metadata.labels`, v, 'label values must be strings'));
    else if (v.length > 63 || (v !== '' && !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)))
      errs.push(
        fieldErr.invalid(
          'metadata.labels',
          v,
          `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
        ),
      );
  }
  return errs;
}

function validatePodSpec(spec: any, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!isObject(spec)) return [fieldErr.required(path)];
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    errs.push(fieldErr.required(`${path}.containers`));
    return errs;
  }
  const seen = new Set<string>();
  containers.forEach((c: any, i: number) => {
    const p = `${path}.containers[${i}]`;
    if (!c?.name) errs.push(fieldErr.required(`${p}.name`));
    else if (!DNS1123_LABEL.test(c.name))
      errs.push(
        fieldErr.invalid(
          `${p}.name`,
          c.name,
          `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
        ),
      );
    else if (seen.has(c.name)) errs.push(fieldErr.duplicate(`${p}.name`, c.name));
    else seen.add(c.name);
    if (!c?.image) errs.push(fieldErr.required(`${p}.image`));
    (Array.isArray(c?.ports) ? c.ports : []).forEach((port: any, j: number) => {
      const cp = port?.containerPort;
      if (!Number.isInteger(cp) || cp < 1 || cp > 65535)
        errs.push(fieldErr.invalid(`${p}.ports[${j}].containerPort`, cp, 'must be between 1 and 65535, inclusive'));
    });
  });
  return errs;
}

function validateReplicas(o: KObj, path = 'spec.replicas'): FieldError[] {
  const r = o.spec?.replicas;
  if (r === undefined) return [];
  if (r < 0) return [fieldErr.invalid(path, r, 'must be greater than or equal to 0')];
  return [];
}

function goLabelSelector(sel: any): string {
  const ml = Object.entries(sel?.matchLabels ?? {})
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join(', ');
  return `v1.LabelSelector{MatchLabels:map[string]string{${ml}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`;
}

/** Deployment/ReplicaSet/StatefulSet/DaemonSet: selector required, matching the template, immutable. */
function validateWorkload(o: KObj, old: KObj | undefined, opts: { replicas: boolean }): FieldError[] {
  const errs: FieldError[] = [];
  const spec = o.spec;
  if (!isObject(spec)) return [fieldErr.required('spec')];
  if (opts.replicas) errs.push(...validateReplicas(o));
  const sel = spec.selector;
  const empty =
    !isObject(sel) || (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0);
  if (empty) errs.push(fieldErr.required('spec.selector'));
  else {
    if (!isObject(spec.template)) errs.push(fieldErr.required('spec.template'));
    const labels = spec.template?.metadata?.labels;
    if (!matchesLabels(parseLabelSelector(labelSelectorToString(sel)), labels))
      errs.push(
        fieldErr.invalid('spec.template.metadata.labels', labels ?? {}, '`selector` does not match template `labels`'),
      );
  }
  if (old && isObject(old.spec?.selector) && JSON.stringify(old.spec.selector) !== JSON.stringify(sel)) {
    errs.push(fieldErr.invalid('spec.selector', goLabelSelector(sel), 'field is immutable'));
  }
  errs.push(...validatePodSpec(spec.template?.spec, 'spec.template.spec'));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// defaulting (pkg/apis/*/v1/defaults.go, the parts that matter to clients)

function defaultContainers(podSpec: any): void {
  if (!isObject(podSpec)) return;
  for (const list of ['initContainers', 'containers']) {
    for (const c of Array.isArray(podSpec[list]) ? podSpec[list] : []) {
      if (!isObject(c)) continue;
      if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
        const tagged = /:[^/]+$/.test(c.image) || c.image.includes('@');
        c.imagePullPolicy = !tagged || c.image.endsWith(':latest') ? 'Always' : 'IfNotPresent';
      }
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      for (const p of Array.isArray(c.ports) ? c.ports : []) if (isObject(p)) p.protocol ??= 'TCP';
    }
  }
  podSpec.restartPolicy ??= 'Always';
  podSpec.terminationGracePeriodSeconds ??= 30;
  podSpec.dnsPolicy ??= 'ClusterFirst';
  podSpec.schedulerName ??= 'default-scheduler';
  podSpec.securityContext ??= {};
}

function defaultTemplate(o: KObj): void {
  if (isObject(o.spec?.template)) defaultContainers(o.spec.template.spec);
}

/**
 * An apps/v1 workload: namespaced, every verb, in category `all`. `defaultSpec` fills in its spec (when it has
 * one) before the pod template is defaulted; `replicas` says whether its spec has a replica count to validate.
 */
function appsWorkload(
  def: Pick<ResourceDef, 'resource' | 'singular' | 'kind' | 'shortNames' | 'subresources' | 'generation'> &
    Partial<Pick<ResourceDef, 'fieldLabels'>> & { replicas: boolean; defaultSpec: (spec: any) => void },
): ResourceDef {
  const { replicas, defaultSpec, fieldLabels = {}, ...names } = def;
  return {
    group: 'apps',
    version: 'v1',
    ...names,
    namespaced: true,
    verbs: ALL_VERBS,
    categories: ['all'],
    returnDeletedObject: false,
    fieldLabels,
    defaults: (o) => {
      if (!isObject(o.spec)) return;
      defaultSpec(o.spec);
      defaultTemplate(o);
    },
    validate: (o, old) => validateWorkload(o, old, { replicas }),
  };
}

const metaFields = (o: KObj) => ({ 'metadata.name': o.metadata?.name, 'metadata.namespace': o.metadata?.namespace });

const RESOURCES: ResourceDef[] = [
  {
    group: '',
    version: 'v1',
    resource: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ['po'],
    categories: ['all'],
    subresources: ['status', 'log', 'proxy', 'portforward'],
    generation: false,
    returnDeletedObject: true,
    fieldLabels: {
      'spec.nodeName': (o) => o.spec?.nodeName,
      'spec.restartPolicy': (o) => o.spec?.restartPolicy,
      'spec.schedulerName': (o) => o.spec?.schedulerName,
      'spec.serviceAccountName': (o) => o.spec?.serviceAccountName,
      'spec.hostNetwork': (o) => String(Boolean(o.spec?.hostNetwork)),
      'status.phase': (o) => o.status?.phase,
      'status.podIP': (o) => o.status?.podIP,
      'status.nominatedNodeName': (o) => o.status?.nominatedNodeName,
    },
    defaults: (o) => defaultContainers(o.spec),
    validate: (o) => validatePodSpec(o.spec, 'spec'),
  },
  {
    group: '',
    version: 'v1',
    resource: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ['ev'],
    subresources: [],
    generation: false,
    returnDeletedObject: false,
    fieldLabels: {
      'involvedObject.kind': (o) => o.involvedObject?.kind,
      'involvedObject.namespace': (o) => o.involvedObject?.namespace,
      'involvedObject.name': (o) => o.involvedObject?.name,
      'involvedObject.uid': (o) => o.involvedObject?.uid,
      'involvedObject.apiVersion': (o) => o.involvedObject?.apiVersion,
      'involvedObject.resourceVersion': (o) => o.involvedObject?.resourceVersion,
      'involvedObject.fieldPath': (o) => o.involvedObject?.fieldPath,
      reason: (o) => o.reason,
      reportingComponent: (o) => o.reportingComponent,
      source: (o) => o.source?.component,
      type: (o) => o.type,
    },
    validate: (o) => (o.involvedObject ? [] : [fieldErr.required('involvedObject')]),
  },
  {
    group: '',
    version: 'v1',
    resource: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ['cm'],
    subresources: [],
    generation: false,
    returnDeletedObject: false,
    fieldLabels: {},
  },
  {
    group: '',
    version: 'v1',
    resource: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: [],
    subresources: [],
    generation: false,
    returnDeletedObject: false,
    fieldLabels: { type: (o) => o.type },
    // As the Secret conversion does: stringData is write-only, merged into data (base64) and never stored.
    defaults: (o) => {
      const text = (o as { stringData?: Record<string, string> }).stringData;
      if (text && typeof text === 'object') {
        const data = ((o as { data?: Record<string, string> }).data ??= {});
        for (const [k, v] of Object.entries(text)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
      }
      delete (o as { stringData?: unknown }).stringData;
      (o as { type?: string }).type ??= 'Opaque';
    },
  },
  {
    group: '',
    version: 'v1',
    resource: 'services',
    singular: 'service',
    kind: 'Service',
    namespaced: true,
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    shortNames: ['svc'],
    categories: ['all'],
    subresources: ['status', 'proxy'],
    generation: false,
    returnDeletedObject: false,
    fieldLabels: {},
  },
  {
    group: '',
    version: 'v1',
    resource: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    shortNames: ['ns'],
    subresources: ['status'],
    generation: false,
    returnDeletedObject: false,
    fieldLabels: { 'status.phase': (o) => o.status?.phase },
    defaults: (o) => {
      o.status ??= {};
      o.status.phase ??= 'Active';
    },
  },
  appsWorkload({
    resource: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    shortNames: ['deploy'],
    subresources: ['status', 'scale'],
    generation: 'spec+annotations',
    replicas: true,
    defaultSpec: (spec) => {
      spec.replicas ??= 1;
      spec.strategy ??= { type: 'RollingUpdate' };
      if (spec.strategy.type === undefined) spec.strategy.type = 'RollingUpdate';
      if (spec.strategy.type === 'RollingUpdate')
        spec.strategy.rollingUpdate = {
          maxUnavailable: '25%',
          maxSurge: '25%',
          ...(spec.strategy.rollingUpdate ?? {}),
        };
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
    },
  }),
  appsWorkload({
    resource: 'statefulsets',
    singular: 'statefulset',
    kind: 'StatefulSet',
    shortNames: ['sts'],
    subresources: ['status', 'scale'],
    generation: 'spec',
    replicas: true,
    defaultSpec: (spec) => {
      spec.replicas ??= 1;
      spec.podManagementPolicy ??= 'OrderedReady';
      spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
      spec.revisionHistoryLimit ??= 10;
      spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
    },
  }),
  appsWorkload({
    resource: 'daemonsets',
    singular: 'daemonset',
    kind: 'DaemonSet',
    shortNames: ['ds'],
    subresources: ['status'],
    generation: 'spec',
    replicas: false,
    defaultSpec: (spec) => {
      spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } };
      spec.revisionHistoryLimit ??= 10;
    },
  }),
  appsWorkload({
    resource: 'replicasets',
    singular: 'replicaset',
    kind: 'ReplicaSet',
    shortNames: ['rs'],
    subresources: ['status', 'scale'],
    generation: 'spec',
    replicas: true,
    fieldLabels: { 'status.replicas': (o) => (o.status?.replicas === undefined ? '0' : String(o.status.replicas)) },
    defaultSpec: (spec) => {
      spec.replicas ??= 1;
    },
  }),
];

export const registry = {
  all(): readonly ResourceDef[] {
    return RESOURCES;
  },
  byResource(group: string, version: string, resource: string): ResourceDef | undefined {
    return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
  },
  byKind(apiVersion: string, kind: string): ResourceDef | undefined {
    return RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
  },
  /** By kind alone (kinds are unique among the fake's resources). */
  byKindName(kind: string): ResourceDef | undefined {
    return RESOURCES.find((r) => r.kind === kind || r.resource === kind);
  },
};

/** Field label values of an object, for field selectors. */
export function fieldsOf(def: ResourceDef, o: KObj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metaFields(o))) out[k] = v ?? '';
  for (const [k, f] of Object.entries(def.fieldLabels)) out[k] = f(o) ?? '';
  return out;
}

export function supportsFieldLabel(def: ResourceDef, label: string): boolean {
  return label === 'metadata.name' || label === 'metadata.namespace' || label in def.fieldLabels;
}
