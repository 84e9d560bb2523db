/**
 * The three non-apply patch types the apiserver accepts:
 *  - application/json-patch+json        RFC 6902 (add, remove, replace, move, copy, test)
 *  - application/merge-patch+json       RFC 7386 (null deletes, lists replace)
 *  - application/strategic-merge-patch+json  merge patch, except that lists carrying a
 *    `patchMergeKey` in the Go types merge item by item (containers by name, env by name,
 *    volumes by name, container ports by containerPort, service ports by port, ...), with the
 *    `$patch: delete|replace`, `$retainKeys`, `$deleteFromPrimitiveList/<f>` and
 *    `$setElementOrder/<f>` directives.
 * Errors are ApiErrors shaped like the apiserver's for the same failure.
 */
import { clone, deepEqual, isObject } from './json.js';
import { err } from './status.js';

// ---------------------------------------------------------------------------------------------
// RFC 6902

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function decodePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw err.unprocessable(`invalid JSON Pointer: ${JSON.stringify(ptr)}`);
  return ptr
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** What the API server answers when the parent of a pointer's target is not in the document. */
function missingPath(op: string, ptr: string) {
  return err.unprocessable(
    `${op} operation does not apply: doc is missing path: ${JSON.stringify(ptr)}: missing value`,
  );
}

function container(doc: any, parts: string[], op: string, ptr: string): any {
  let cur = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) {
      const i = Number(p);
      if (!/^\d+$/.test(p) || i >= cur.length) throw missingPath(op, ptr);
      cur = cur[i];
    } else if (isObject(cur)) {
      if (!(p in cur)) throw missingPath(op, ptr);
      cur = cur[p];
    } else {
      throw missingPath(op, ptr);
    }
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw missingPath(op, ptr);
  return cur;
}

/** The container of the value a (non-root) pointer names, and its index or key there; the value must exist. */
function existing(doc: any, parts: string[], op: string, ptr: string): { c: any; key: number | string } {
  const c = container(doc, parts, op, ptr);
  const last = parts[parts.length - 1]!;
  const found = Array.isArray(c) ? /^\d+$/.test(last) && Number(last) < c.length : last in c;
  if (!found) throw err.unprocessable(`${op} operation does not apply: doc is missing key: ${ptr}: missing value`);
  return { c, key: Array.isArray(c) ? Number(last) : last };
}

function getPointer(doc: any, ptr: string, op: string): unknown {
  const parts = decodePointer(ptr);
  if (parts.length === 0) return doc;
  const { c, key } = existing(doc, parts, op, ptr);
  return c[key];
}

function addAt(doc: any, ptr: string, value: unknown, op = 'add'): any {
  const parts = decodePointer(ptr);
  if (parts.length === 0) return clone(value);
  const c = container(doc, parts, op, ptr);
  const last = parts[parts.length - 1]!;
  if (Array.isArray(c)) {
    if (last === '-') c.push(clone(value));
    else {
      const i = Number(last);
      if (!/^\d+$/.test(last) || i > c.length) throw missingPath(op, ptr);
      c.splice(i, 0, clone(value));
    }
  } else c[last] = clone(value);
  return doc;
}

function removeAt(doc: any, ptr: string, op = 'remove'): any {
  const parts = decodePointer(ptr);
  if (parts.length === 0) throw err.unprocessable(`${op} operation does not apply: cannot remove the root`);
  const { c, key } = existing(doc, parts, op, ptr);
  if (Array.isArray(c)) c.splice(key as number, 1);
  else delete c[key];
  return doc;
}

export function parseJsonPatch(body: unknown): JsonPatchOp[] {
  if (!Array.isArray(body)) throw err.badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  for (const op of body) {
    if (!isObject(op) || typeof op.op !== 'string')
      throw err.badRequest('json: cannot unmarshal patch operation: missing "op"');
    if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(op.op))
      throw err.unprocessable(`Unexpected kind: ${op.op}`);
    if (typeof op.path !== 'string') throw err.unprocessable(`${op.op} operation missing path`);
  }
  return body as JsonPatchOp[];
}

export function applyJsonPatch<T>(target: T, ops: JsonPatchOp[]): T {
  let doc: any = clone(target);
  for (const o of ops) {
    switch (o.op) {
      case 'add':
        if (!('value' in o)) throw err.unprocessable('add operation missing value');
        doc = addAt(doc, o.path, o.value);
        break;
      case 'remove':
        doc = removeAt(doc, o.path);
        break;
      case 'replace': {
        if (!('value' in o)) throw err.unprocessable('replace operation missing value');
        getPointer(doc, o.path, 'replace');
        const parts = decodePointer(o.path);
        if (parts.length === 0) doc = clone(o.value);
        else {
          const c = container(doc, parts, 'replace', o.path);
          const last = parts[parts.length - 1]!;
          if (Array.isArray(c)) c[Number(last)] = clone(o.value);
          else c[last] = clone(o.value);
        }
        break;
      }
      case 'move': {
        if (typeof o.from !== 'string') throw err.unprocessable('move operation missing from');
        if (o.path.startsWith(`${o.from}/`))
          throw err.unprocessable('move operation does not apply: from is a prefix of path');
        const v = clone(getPointer(doc, o.from, 'move'));
        doc = removeAt(doc, o.from, 'move');
        doc = addAt(doc, o.path, v, 'move');
        break;
      }
      case 'copy': {
        if (typeof o.from !== 'string') throw err.unprocessable('copy operation missing from');
        doc = addAt(doc, o.path, clone(getPointer(doc, o.from, 'copy')), 'copy');
        break;
      }
      case 'test': {
        let actual: unknown;
        try {
          actual = getPointer(doc, o.path, 'test');
        } catch {
          actual = undefined;
        }
        if (!deepEqual(actual, o.value)) throw err.unprocessable(`testing value ${o.path} failed: test failed`);
        break;
      }
    }
  }
  return doc as T;
}

// ---------------------------------------------------------------------------------------------
// RFC 7386

export function applyMergePatch(target: unknown, patch: unknown): any {
  if (!isObject(patch)) return clone(patch);
  const out: Record<string, any> = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch

const CONTAINER_LISTS = new Set(['containers', 'initContainers', 'ephemeralContainers']);

/**
 * The `patchMergeKey` of a list field, from the Go struct tags of the built-in types, given the
 * chain of field names leading to it (list indexes omitted). Undefined: the list is atomic and a
 * patch replaces it whole.
 */
export function listMergeKey(path: readonly string[]): string | undefined {
  const field = path[path.length - 1];
  const parent = path.slice(0, -1);
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
    case 'resourceClaims':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'volumeDevices':
      return 'devicePath';
    case 'hostAliases':
      return 'ip';
    case 'ownerReferences':
      return 'uid';
    case 'conditions':
      return 'type';
    case 'topologySpreadConstraints':
      return 'topologyKey';
    case 'ports':
      return parent.some((p) => CONTAINER_LISTS.has(p)) ? 'containerPort' : 'port';
    default:
      return undefined;
  }
}

/** Primitive lists whose patchStrategy is merge (set union) rather than replace. */
function isMergedPrimitiveList(path: readonly string[]): boolean {
  return path.length === 2 && path[0] === 'metadata' && path[1] === 'finalizers';
}

function mergeKeyed(target: any[], patch: any[], key: string, path: string[]): any[] {
  if (patch.some((it) => isObject(it) && it.$patch === 'replace')) {
    return patch.filter((it) => !(isObject(it) && it.$patch === 'replace')).map((it) => stripDirectives(it));
  }
  const out = target.map((x) => clone(x));
  for (const item of patch) {
    if (!isObject(item)) {
      out.push(clone(item));
      continue;
    }
    const idx = out.findIndex((x) => isObject(x) && deepEqual(x[key], item[key]));
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = strategicMerge(out[idx], item, path);
    else out.push(strategicMerge({}, item, path));
  }
  return out;
}

function stripDirectives(v: unknown): any {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Record<string, any> = {};
  for (const [k, x] of Object.entries(v)) {
    if (
      k === '$patch' ||
      k === '$retainKeys' ||
      k.startsWith('$setElementOrder/') ||
      k.startsWith('$deleteFromPrimitiveList/')
    )
      continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

/** Applies a strategic merge patch; `path` is the chain of field names of `target`. */
export function strategicMerge(target: unknown, patch: unknown, path: string[] = []): any {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') return stripDirectives(patch);
  const out: Record<string, any> = isObject(target) ? clone(target) : {};
  const orders: Array<[string, unknown[]]> = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith('$setElementOrder/')) {
      if (Array.isArray(v)) orders.push([k.slice('$setElementOrder/'.length), v]);
      continue;
    }
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const f = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[f]) && Array.isArray(v))
        out[f] = out[f].filter((x: unknown) => !v.some((d) => deepEqual(d, x)));
      continue;
    }
    const childPath = [...path, k];
    if (v === null) {
      delete out[k];
    } else if (isObject(v) && v.$patch === 'delete') {
      delete out[k];
    } else if (Array.isArray(v)) {
      const key = listMergeKey(childPath);
      if (key !== undefined) out[k] = mergeKeyed(Array.isArray(out[k]) ? out[k] : [], v, key, childPath);
      else if (isMergedPrimitiveList(childPath)) {
        const base: unknown[] = Array.isArray(out[k]) ? out[k] : [];
        out[k] = [...base, ...v.filter((x) => !base.some((b) => deepEqual(b, x)))];
      } else out[k] = stripDirectives(v);
    } else if (isObject(v)) {
      out[k] = strategicMerge(out[k], v, childPath);
    } else {
      out[k] = v;
    }
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys as string[]);
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  for (const [field, order] of orders) {
    const list = out[field];
    if (!Array.isArray(list)) continue;
    const key = listMergeKey([...path, field]);
    const id = (x: any) => (key && isObject(x) ? x[key] : x);
    const pos = (x: any) => {
      const i = order.findIndex((o) => deepEqual(key && isObject(o) ? (o as any)[key] : o, id(x)));
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    out[field] = list
      .map((x, i) => ({ x, i }))
      .sort((a, b) => pos(a.x) - pos(b.x) || a.i - b.i)
      .map((e) => e.x);
  }
  return out;
}

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** The list the apiserver prints in its 415 for built-in resources. */
export const ACCEPTED_PATCH_TYPES = [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.strategic, PATCH_TYPES.apply];
