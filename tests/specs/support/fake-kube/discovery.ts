/**
 * Discovery documents: /version, /apis (APIGroupList), /apis/{group} (APIGroup) and the
 * APIResourceList of each group version, with subresources (`deployments/scale` as
 * autoscaling/v1 Scale, `pods/log`, `pods/proxy`, `pods/portforward`, `services/proxy`, the status subresources)
 * listed the way the apiserver lists them, since client-node's KubernetesObjectApi resolves kinds to resources
 * through them. `metrics.k8s.io/v1beta1` is listed while it is served (metrics.ts).
 */
import { METRICS_GROUP, METRICS_VERSION } from './metrics.js';
import { apiVersionOf, registry } from './resources.js';

export function versionInfo(v: { major: string; minor: string; gitVersion: string }) {
  return {
    major: v.major,
    minor: v.minor,
    gitVersion: v.gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2024-08-13T07:28:49Z',
    goVersion: 'go1.22.5',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function groupList(metrics: boolean) {
  const gv = (name: string, version = 'v1') => ({
    name,
    versions: [{ groupVersion: `${name}/${version}`, version }],
    preferredVersion: { groupVersion: `${name}/${version}`, version },
  });
  const groups = [gv('apps'), gv('authentication.k8s.io'), gv('authorization.k8s.io')];
  if (metrics) groups.push(gv(METRICS_GROUP, METRICS_VERSION));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

const CONNECT_VERBS: Record<string, string[]> = {
  proxy: ['create', 'delete', 'get', 'patch', 'update'],
  portforward: ['create', 'get'],
};

export function resourceList(
  groupVersion: string,
  { selfSubjectReview, metrics }: { selfSubjectReview: boolean; metrics: boolean },
) {
  if (groupVersion === `${METRICS_GROUP}/${METRICS_VERSION}`) {
    if (!metrics) return undefined;
    const r = (name: string, kind: string, namespaced: boolean) => ({
      name,
      singularName: '',
      namespaced,
      kind,
      verbs: ['get', 'list'],
    });
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion,
      resources: [r('nodes', 'NodeMetrics', false), r('pods', 'PodMetrics', true)],
    };
  }
  if (groupVersion === 'authentication.k8s.io/v1') {
    const resources = [
      { name: 'tokenreviews', singularName: 'tokenreview', namespaced: false, kind: 'TokenReview', verbs: ['create'] },
    ];
    if (selfSubjectReview)
      resources.unshift({
        name: 'selfsubjectreviews',
        singularName: 'selfsubjectreview',
        namespaced: false,
        kind: 'SelfSubjectReview',
        verbs: ['create'],
      });
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
  }
  if (groupVersion === 'authorization.k8s.io/v1') {
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion,
      resources: [
        {
          name: 'selfsubjectaccessreviews',
          singularName: 'selfsubjectaccessreview',
          namespaced: false,
          kind: 'SelfSubjectAccessReview',
          verbs: ['create'],
        },
        {
          name: 'selfsubjectrulesreviews',
          singularName: 'selfsubjectrulesreview',
          namespaced: false,
          kind: 'SelfSubjectRulesReview',
          verbs: ['create'],
        },
      ],
    };
  }
  const defs = registry.all().filter((d) => apiVersionOf(d) === groupVersion);
  if (defs.length === 0) return undefined;
  const resources: Array<Record<string, unknown>> = [];
  for (const d of [...defs].sort((a, b) => a.resource.localeCompare(b.resource))) {
    resources.push({
      name: d.resource,
      singularName: d.singular,
      namespaced: d.namespaced,
      kind: d.kind,
      verbs: d.verbs,
      ...(d.shortNames ? { shortNames: d.shortNames } : {}),
      ...(d.categories ? { categories: d.categories } : {}),
    });
    for (const sub of [...d.subresources].sort()) {
      if (sub === 'scale')
        resources.push({
          name: `${d.resource}/scale`,
          singularName: '',
          namespaced: d.namespaced,
          group: 'autoscaling',
          version: 'v1',
          kind: 'Scale',
          verbs: ['get', 'patch', 'update'],
        });
      else if (sub in CONNECT_VERBS)
        resources.push({
          name: `${d.resource}/${sub}`,
          singularName: '',
          namespaced: d.namespaced,
          kind: sub === 'proxy' ? `${d.kind}ProxyOptions` : 'PodPortForwardOptions',
          verbs: CONNECT_VERBS[sub],
        });
      else if (sub === 'log')
        resources.push({
          name: `${d.resource}/log`,
          singularName: '',
          namespaced: d.namespaced,
          kind: d.kind,
          verbs: ['get'],
        });
      else
        resources.push({
          name: `${d.resource}/${sub}`,
          singularName: '',
          namespaced: d.namespaced,
          kind: d.kind,
          verbs: ['get', 'patch', 'update'],
        });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}
