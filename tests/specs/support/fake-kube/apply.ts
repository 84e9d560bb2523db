/**
 * Server-side apply, simplified. Field ownership is tracked per field manager at the level of
 * leaf fields (scalars, atomic lists, empty maps); items of lists that have a merge key
 * (containers by name, ports by containerPort, ...) are addressed by that key, as in
 * managedFields. The rules kept from the real thing
 * (https://kubernetes.io/docs/reference/using-api/server-side-apply/):
 *  - an apply by manager M sets every field of its configuration; a field whose live value
 *    differs and that another manager owns is a conflict (409, reason Conflict, one cause of type
 *    FieldManagerConflict per field) unless `force=true`, which moves ownership to M;
 *  - fields M applied before but left out now are removed, unless another manager owns them too;
 *  - non-apply writes (create, update, patch) make their manager (fieldManager, or the
 *    User-Agent's product name) the owner of the fields they changed, taking them from others,
 *    never conflicting.
 * Not modelled: metadata.managedFields in responses, per-version ownership, granular map/struct
 * ownership ("." entries), the `associative list with multiple keys` cases.
 */
import { clone, deepEqual, isObject } from './json.js';
import { listMergeKey, strategicMerge } from './patch.js';
import { err, type StatusCause } from './status.js';

export type Seg = string | { key: string; value: unknown };

export interface ManagerEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  subresource?: string;
  paths: Map<string, Seg[]>;
}

export type Owners = ManagerEntry[];

const SYSTEM_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
  'generateName',
]);

export function pathString(segs: readonly Seg[]): string {
  return segs.map((s) => (typeof s === 'string' ? `.${s}` : `[${s.key}=${JSON.stringify(s.value)}]`)).join('');
}

/** Leaf field paths of an object (status and system metadata excluded). */
export function leafPaths(obj: unknown): Map<string, Seg[]> {
  const out = new Map<string, Seg[]>();
  const walk = (v: unknown, segs: Seg[], names: string[]) => {
    if (isObject(v)) {
      let keys = Object.keys(v).filter((k) => v[k] !== undefined);
      if (segs.length === 0) keys = keys.filter((k) => k !== 'apiVersion' && k !== 'kind' && k !== 'status');
      if (segs.length === 1 && segs[0] === 'metadata') keys = keys.filter((k) => !SYSTEM_METADATA.has(k));
      if (keys.length === 0) {
        if (segs.length > 0 && !(segs.length === 1 && segs[0] === 'metadata')) out.set(pathString(segs), segs);
        return;
      }
      for (const k of keys) walk(v[k], [...segs, k], [...names, k]);
    } else if (Array.isArray(v)) {
      const key = listMergeKey(names);
      if (key && v.length > 0 && v.every((it) => isObject(it) && it[key] !== undefined)) {
        for (const item of v) walk(item, [...segs, { key, value: (item as Record<string, unknown>)[key] }], names);
      } else out.set(pathString(segs), segs);
    } else {
      out.set(pathString(segs), segs);
    }
  };
  walk(obj, [], []);
  return out;
}

export function getAt(obj: unknown, segs: readonly Seg[]): unknown {
  let cur: unknown = obj;
  for (const s of segs) {
    if (typeof s === 'string') {
      if (!isObject(cur)) return undefined;
      cur = cur[s];
    } else {
      if (!Array.isArray(cur)) return undefined;
      cur = cur.find((it) => isObject(it) && deepEqual(it[s.key], s.value));
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Deletes a leaf, pruning maps it leaves empty and list items it leaves without their key. */
export function deleteAt(obj: unknown, segs: readonly Seg[]): void {
  const rec = (node: unknown, i: number): boolean => {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (typeof s === 'string') {
      if (!isObject(node) || !(s in node)) return false;
      if (last || rec(node[s], i + 1)) delete node[s];
      return Object.keys(node).length === 0;
    }
    if (!Array.isArray(node)) return false;
    const idx = node.findIndex((it) => isObject(it) && deepEqual(it[s.key], s.value));
    if (idx < 0) return false;
    if (last || rec(node[idx], i + 1) || !(s.key in node[idx])) node.splice(idx, 1);
    return node.length === 0;
  };
  if (segs.length > 0) rec(obj, 0);
}

function printManager(e: ManagerEntry): string {
  let s = JSON.stringify(e.manager);
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`;
  return e.operation === 'Update' ? `${s} using ${e.apiVersion}` : s;
}

function conflictError(conflicts: Array<{ entry: ManagerEntry; path: string }>): never {
  const causes: StatusCause[] = conflicts.map((c) => ({
    reason: 'FieldManagerConflict',
    message: `conflict with ${printManager(c.entry)}`,
    field: c.path,
  }));
  let message: string;
  if (conflicts.length === 1) {
    message = `Apply failed with 1 conflict: conflict with ${printManager(conflicts[0]!.entry)}: ${conflicts[0]!.path}`;
  } else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) {
      const k = printManager(c.entry);
      byManager.set(k, [...(byManager.get(k) ?? []), c.path]);
    }
    const lines: string[] = [];
    for (const k of [...byManager.keys()].sort()) {
      lines.push(`conflicts with ${k}:`);
      for (const p of byManager.get(k)!) lines.push(`- ${p}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  throw err.applyConflict(causes, message);
}

function cloneOwners(owners: Owners): Owners {
  return owners.map((e) => ({ ...e, paths: new Map(e.paths) }));
}

function entryFor(
  owners: Owners,
  manager: string,
  operation: 'Apply' | 'Update',
  apiVersion: string,
  time: string,
  subresource?: string,
): ManagerEntry {
  let e = owners.find(
    (x) =>
      x.manager === manager &&
      x.operation === operation &&
      (operation === 'Apply' || x.apiVersion === apiVersion) &&
      x.subresource === subresource,
  );
  if (!e) {
    e = { manager, operation, apiVersion, time, paths: new Map(), ...(subresource ? { subresource } : {}) };
    owners.push(e);
  }
  e.time = time;
  e.apiVersion = apiVersion;
  return e;
}

export interface ApplyInput {
  manager: string;
  force: boolean;
  apiVersion: string;
  time: string;
  subresource?: string;
}

/** Server-side apply of `config` onto `live` (undefined: the object is being created). */
export function serverSideApply(
  live: unknown,
  config: Record<string, unknown>,
  owners: Owners,
  input: ApplyInput,
): { obj: any; owners: Owners } {
  const next = cloneOwners(owners);
  const cfgLeaves = leafPaths(config);
  const self = (e: ManagerEntry) =>
    e.manager === input.manager && e.operation === 'Apply' && e.subresource === input.subresource;
  const conflicts: Array<{ entry: ManagerEntry; path: string }> = [];
  if (live !== undefined) {
    for (const [p, segs] of cfgLeaves) {
      const liveVal = getAt(live, segs);
      if (liveVal === undefined || deepEqual(liveVal, getAt(config, segs))) continue;
      for (const e of next) if (!self(e) && e.paths.has(p)) conflicts.push({ entry: e, path: p });
    }
  }
  if (conflicts.length > 0 && !input.force) conflictError(conflicts);

  const merged = live === undefined ? clone(config) : strategicMerge(live, config);
  const mine = next.find(self);
  if (mine) {
    for (const [p, segs] of mine.paths) {
      if (cfgLeaves.has(p)) continue;
      if (next.some((e) => e !== mine && e.paths.has(p))) continue;
      deleteAt(merged, segs);
    }
  }
  if (input.force) for (const c of conflicts) c.entry.paths.delete(c.path);
  const entry = entryFor(next, input.manager, 'Apply', input.apiVersion, input.time, input.subresource);
  entry.paths = new Map(cfgLeaves);
  return { obj: merged, owners: next.filter((e) => e.paths.size > 0) };
}

/** Ownership after a non-apply write by `manager` that turned `before` into `after`. */
export function recordUpdate(
  before: unknown,
  after: unknown,
  owners: Owners,
  manager: string,
  apiVersion: string,
  time: string,
  subresource?: string,
): Owners {
  const next = cloneOwners(owners);
  const afterLeaves = leafPaths(after);
  const beforeLeaves = before === undefined ? new Map<string, Seg[]>() : leafPaths(before);
  for (const p of beforeLeaves.keys()) if (!afterLeaves.has(p)) for (const e of next) e.paths.delete(p);
  const changed: Array<[string, Seg[]]> = [];
  for (const [p, segs] of afterLeaves) {
    if (before === undefined || !deepEqual(getAt(before, segs), getAt(after, segs))) changed.push([p, segs]);
  }
  if (changed.length > 0) {
    const entry = entryFor(next, manager, 'Update', apiVersion, time, subresource);
    for (const [p, segs] of changed) {
      for (const e of next) if (e !== entry) e.paths.delete(p);
      entry.paths.set(p, segs);
    }
  }
  return next.filter((e) => e.paths.size > 0);
}

/** The default field manager of a non-apply request: the User-Agent's product token. */
export function managerFromUserAgent(ua: string | undefined): string {
  if (!ua) return 'unknown';
  const i = ua.indexOf('/');
  return (i >= 0 ? ua.slice(0, i) : ua).slice(0, 128) || 'unknown';
}
