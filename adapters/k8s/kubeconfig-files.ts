/**
 * KUBECONFIG as kubectl reads it: one file, or several separated by ':' and merged, the first file to
 * set a value winning. What makes one unusable is found here without @kubernetes/client-node, so the
 * agent can refuse a broken one at start before it loads that client; the checks are the ones the
 * client makes when it loads a file, plus the agent's own need for a current context with a cluster.
 */
import { readFileSync } from 'node:fs';
import { delimiter } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** The files a KUBECONFIG value names, in order; empty entries (`a::b`, a trailing ':') are skipped. */
export function kubeconfigFiles(value: string): string[] {
  return value.split(delimiter).filter((f) => f.trim() !== '');
}

export interface KubeconfigText {
  path: string;
  text: string;
}

type Entry = Record<string, unknown>;

/**
 * Why these kubeconfig files (already read, in KUBECONFIG order) cannot give the agent a cluster, or
 * undefined when they can. A message names a file and a position or a field, never the content: a
 * kubeconfig holds tokens and keys.
 */
export function kubeconfigProblem(files: KubeconfigText[]): string | undefined {
  const clusters = new Map<string, Entry>();
  const contexts = new Map<string, Entry>();
  let current: string | undefined;
  for (const { path, text } of files) {
    let doc: unknown;
    try {
      doc = parseYaml(text, { logLevel: 'error', merge: true });
    } catch (err) {
      const at = (err as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
      const where = at ? ` at line ${at.line}, column ${at.col}` : '';
      return `${path} is not valid YAML${where} (the content is not shown: it may hold credentials)`;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      return `${path} is not a kubeconfig: expected a mapping with clusters, contexts and users`;
    const d = doc as Entry;
    for (const [list, required] of [
      ['clusters', ['cluster', 'cluster.server']],
      ['contexts', ['context', 'context.cluster']],
      ['users', []],
    ] as const) {
      const items = d[list];
      if (items === undefined || items === null) continue;
      if (!Array.isArray(items)) return `${path}: ${list} must be a list`;
      for (const [i, item] of items.entries()) {
        const e = (item ?? {}) as Entry;
        for (const field of ['name', ...required])
          if (!field.split('.').reduce<unknown>((v, k) => (v as Entry | undefined)?.[k], e))
            return `${path}: ${list}[${i}].${field} is missing`;
        const name = String(e.name);
        if (list === 'clusters' && !clusters.has(name)) clusters.set(name, e);
        if (list === 'contexts' && !contexts.has(name)) contexts.set(name, e);
        const tokenFile = (e.user as Entry | undefined)?.['token-file'];
        if (list === 'users' && typeof tokenFile === 'string') {
          try {
            readFileSync(tokenFile);
          } catch (err) {
            return `${path}: users[${i}].user.token-file ${tokenFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
          }
        }
      }
    }
    if (current === undefined && typeof d['current-context'] === 'string' && d['current-context'] !== '')
      current = d['current-context'];
  }
  const all = files.map((f) => f.path).join(', ');
  if (current === undefined) return `${all}: no current-context is set; set one (kubectl config use-context NAME)`;
  const context = contexts.get(current);
  if (!context) return `${all}: the current-context ${current} is not among the contexts`;
  const cluster = String((context.context as Entry).cluster);
  if (!clusters.has(cluster)) return `${all}: the cluster ${cluster} of the current-context ${current} is not defined`;
  return undefined;
}
