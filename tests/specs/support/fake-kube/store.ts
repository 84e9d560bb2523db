/**
 * Object storage with one cluster-wide resourceVersion counter (like etcd's revision), an event
 * history that watches resume from, and the fan-out to open watches.
 *
 * Watch semantics follow https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
 * and the watch cache: events after the requested resourceVersion are replayed from history;
 * a resourceVersion older than the history window gets an ERROR event carrying a 410 Status
 * (reason Expired, "too old resource version: X (Y)"); with label/field selectors, a MODIFIED
 * event that moves an object into the selection is sent as ADDED and one that moves it out as
 * DELETED (with the previous content and the new resourceVersion).
 */
import type { Owners } from './apply.js';
import { clone, type KObj } from './json.js';
import { apiVersionOf, type ResourceDef } from './resources.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredObject {
  obj: KObj;
  owners: Owners;
}

export interface StoreEvent {
  rv: number;
  type: EventType;
  def: ResourceDef;
  /** Current content (for DELETED: the last content, with the deletion's resourceVersion). */
  obj: KObj;
  /** Content before this change (MODIFIED, DELETED). */
  prev?: KObj;
}

export interface WatchSubscriber {
  def: ResourceDef;
  namespace?: string;
  /** Whether an object passes the watch's label/field selectors. */
  matches: (o: KObj) => boolean;
  send: (type: EventType, obj: KObj) => void;
}

function key(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

function typeKey(def: ResourceDef): string {
  return `${def.group}/${def.resource}`;
}

export class Store {
  private rv: number;
  private readonly objects = new Map<string, Map<string, StoredObject>>();
  private history: StoreEvent[] = [];
  /** Watches may resume from any resourceVersion >= this one. */
  private oldestResumable: number;
  private readonly subscribers = new Set<WatchSubscriber>();
  /** Called after every committed change (controller, GC, log followers hook in here). */
  readonly listeners = new Set<(ev: StoreEvent) => void>();

  constructor(
    startRV = 1000,
    private readonly maxHistory = 5000,
  ) {
    this.rv = startRV;
    this.oldestResumable = startRV;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  get oldestResourceVersion(): number {
    return this.oldestResumable;
  }

  private bucket(def: ResourceDef): Map<string, StoredObject> {
    const k = typeKey(def);
    let b = this.objects.get(k);
    if (!b) {
      b = new Map();
      this.objects.set(k, b);
    }
    return b;
  }

  get(def: ResourceDef, ns: string | undefined, name: string): StoredObject | undefined {
    return this.bucket(def).get(key(def.namespaced ? ns : undefined, name));
  }

  /** Objects of a type (in a namespace, or all), in etcd key order (namespace, then name). */
  list(def: ResourceDef, ns?: string): StoredObject[] {
    const out = [...this.bucket(def).values()].filter(
      (s) => !ns || !def.namespaced || s.obj.metadata?.namespace === ns,
    );
    return out.sort((a, b) => {
      const ka = key(a.obj.metadata?.namespace, a.obj.metadata?.name ?? '');
      const kb = key(b.obj.metadata?.namespace, b.obj.metadata?.name ?? '');
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  }

  allTypes(): Array<[string, StoredObject[]]> {
    return [...this.objects.entries()].map(([k, m]) => [k, [...m.values()]]);
  }

  /** Writes (creates or replaces) an object, assigning the next resourceVersion. Returns the stored copy. */
  put(def: ResourceDef, obj: KObj, owners: Owners): KObj {
    const stored = clone(obj);
    stored.apiVersion = apiVersionOf(def);
    stored.kind = def.kind;
    const ns = def.namespaced ? stored.metadata!.namespace : undefined;
    const k = key(ns, stored.metadata!.name!);
    const before = this.bucket(def).get(k);
    this.rv++;
    stored.metadata!.resourceVersion = String(this.rv);
    this.bucket(def).set(k, { obj: stored, owners });
    this.emit({ rv: this.rv, type: before ? 'MODIFIED' : 'ADDED', def, obj: stored, prev: before?.obj });
    return clone(stored);
  }

  /** Replaces field ownership without a write (a no-op apply still records who manages what). */
  setOwners(def: ResourceDef, ns: string | undefined, name: string, owners: Owners): void {
    const s = this.bucket(def).get(key(def.namespaced ? ns : undefined, name));
    if (s) s.owners = owners;
  }

  /** Removes an object; the DELETED event carries its last content with a new resourceVersion. */
  remove(def: ResourceDef, ns: string | undefined, name: string): KObj | undefined {
    const k = key(def.namespaced ? ns : undefined, name);
    const before = this.bucket(def).get(k);
    if (!before) return undefined;
    this.bucket(def).delete(k);
    this.rv++;
    const gone = clone(before.obj);
    gone.metadata!.resourceVersion = String(this.rv);
    this.emit({ rv: this.rv, type: 'DELETED', def, obj: gone, prev: before.obj });
    return clone(before.obj);
  }

  /** Forgets the event history, as an etcd compaction does: watches from older versions get 410. */
  compact(): void {
    this.history = [];
    this.oldestResumable = this.rv;
  }

  private emit(ev: StoreEvent): void {
    this.history.push(ev);
    if (this.history.length > this.maxHistory) {
      const dropped = this.history.splice(0, this.history.length - this.maxHistory);
      this.oldestResumable = dropped[dropped.length - 1]!.rv;
    }
    for (const s of [...this.subscribers]) deliver(s, ev);
    for (const l of [...this.listeners]) l(ev);
  }

  /**
   * Starts a watch. `fromRV` undefined: synthetic ADDED events for the current state first.
   * Returns undefined and subscribes, or the "too old" message when history cannot serve it.
   */
  subscribe(sub: WatchSubscriber, fromRV: number | undefined): { tooOld?: string; unsubscribe: () => void } {
    const unsubscribe = () => void this.subscribers.delete(sub);
    if (fromRV === undefined) {
      for (const s of this.list(sub.def, sub.namespace)) if (sub.matches(s.obj)) sub.send('ADDED', clone(s.obj));
    } else {
      if (fromRV < this.oldestResumable) {
        return { tooOld: `too old resource version: ${fromRV} (${this.oldestResumable})`, unsubscribe };
      }
      for (const ev of this.history) if (ev.rv > fromRV) deliver(sub, ev);
    }
    this.subscribers.add(sub);
    return { unsubscribe };
  }
}

function deliver(sub: WatchSubscriber, ev: StoreEvent): void {
  if (ev.def !== sub.def) return;
  if (sub.namespace && sub.def.namespaced && ev.obj.metadata?.namespace !== sub.namespace) return;
  const curPasses = ev.type !== 'DELETED' && sub.matches(ev.obj);
  const oldPasses = ev.prev !== undefined && sub.matches(ev.prev);
  if (curPasses && oldPasses) sub.send('MODIFIED', clone(ev.obj));
  else if (curPasses) sub.send('ADDED', clone(ev.obj));
  else if (oldPasses) {
    const gone = clone(ev.prev!);
    gone.metadata!.resourceVersion = String(ev.rv);
    sub.send('DELETED', gone);
  }
}
