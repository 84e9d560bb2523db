/**
 * Watches this agent's workers (their Deployments and pods) and says what changed: a worker's status
 * (`status_changed`), a pod that crash-loops or restarts (`container_crashed`), a pod not ready for
 * longer than a threshold (`container_health_warning`, once per stretch), and, while a worker runs,
 * `container_status_update` every interval. Each watch lists, then watches from that resourceVersion,
 * and starts over when the server ends it (or it expires), so a missed event cannot stall it.
 */
import type { KObj } from '../runtime.js';
import { rawRequest } from '../runtime.js';
import { watchOnce } from '../watch.js';
import type { WorkerFleet } from './fleet.js';
import { type WorkerView, workerView } from './view.js';
import { INSTANCE, managedSelector } from './labels.js';
import { CRASH_REASONS, type PodView, podView } from './pods.js';

export type MonitorEvent =
  | {
      event: 'status_changed';
      data: {
        kind: 'container';
        id: string;
        container_id: string;
        from: string | null;
        to: string;
        worker: WorkerView;
      };
    }
  | {
      event: 'container_crashed';
      data: { container_id: string; pod: string; reason: string | null; restarts: number; message: string | null };
    }
  | {
      event: 'container_health_warning';
      data: { container_id: string; pod: string; not_ready_seconds: number; reason: string | null };
    }
  | { event: 'container_status_update'; data: WorkerView & { pods: PodView[] } };

export interface MonitorOptions {
  /** How long a pod may stay not ready before a health warning. */
  healthWarningMs: number;
  /** How often a running worker's status is sent. */
  statusIntervalMs: number;
  /** How long one watch request lasts before it is started again. */
  resyncSeconds?: number;
}

/** How long to wait before listing again after a watch failed (the API server unreachable, say). */
const RETRY_MS = 2000;
const MAX_RETRY_MS = 60_000;

export class WorkerMonitor {
  private readonly deployments = new Map<string, KObj>();
  private readonly podsByName = new Map<string, KObj>();
  private readonly lastStatus = new Map<string, string>();
  private readonly restarts = new Map<string, number>();
  private readonly warned = new Set<string>();
  private controller?: AbortController;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly fleet: WorkerFleet,
    private readonly emit: (e: MonitorEvent) => void,
    private readonly options: MonitorOptions,
    /** Told when a watch fails (it is retried). */
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  get running(): boolean {
    return this.controller !== undefined;
  }

  start(): void {
    if (this.controller) return;
    const controller = new AbortController();
    this.controller = controller;
    void this.loop(controller.signal, 'deployments');
    void this.loop(controller.signal, 'pods');
    this.timer = setInterval(
      () => this.tick(),
      Math.min(this.options.statusIntervalMs, this.options.healthWarningMs / 2),
    );
    this.timer.unref();
  }

  stop(): void {
    this.controller?.abort();
    this.controller = undefined;
    clearInterval(this.timer);
    this.deployments.clear();
    this.podsByName.clear();
    this.lastStatus.clear();
    this.restarts.clear();
    this.warned.clear();
  }

  private lastUpdate = 0;

  /** Health warnings due, and the periodic status of running workers. */
  private tick(): void {
    const now = Date.now();
    for (const pod of this.podsByName.values()) this.checkHealth(podView(pod), pod, now);
    if (now - this.lastUpdate < this.options.statusIntervalMs) return;
    this.lastUpdate = now;
    for (const name of this.deployments.keys()) {
      const { view, pods } = this.viewOf(name);
      if (view.replicas > 0) this.emit({ event: 'container_status_update', data: { ...view, pods } });
    }
  }

  private async loop(signal: AbortSignal, resource: 'deployments' | 'pods'): Promise<void> {
    const ctx = { signal };
    let failures = 0;
    let lastError = '';
    while (!signal.aborted) {
      try {
        const { clients, namespace } = await this.fleet.place();
        const path =
          resource === 'deployments'
            ? `/apis/apps/v1/namespaces/${namespace}/deployments`
            : `/api/v1/namespaces/${namespace}/pods`;
        const labelSelector = managedSelector(this.fleet.settings.manager);
        const list = await rawRequest<{ items: KObj[]; metadata?: { resourceVersion?: string } }>(
          ctx,
          clients,
          `list ${resource}`,
          {
            method: 'GET',
            path,
            query: { labelSelector },
          },
        );
        this.replaceAll(resource, list.items);
        const listedAt = Date.now();
        await watchOnce(
          ctx,
          clients,
          `watch worker ${resource}`,
          path,
          {
            labelSelector,
            resourceVersion: list.metadata?.resourceVersion,
            timeoutSeconds: this.options.resyncSeconds ?? 300,
            allowWatchBookmarks: true,
          },
          undefined,
          (ev) => {
            this.apply(resource, ev.type, ev.object as KObj);
            return false;
          },
        );
        failures = 0;
        lastError = '';
        // A watch the server ended at once is not started again in a tight loop.
        if (Date.now() - listedAt < RETRY_MS) await new Promise((r) => setTimeout(r, RETRY_MS).unref());
      } catch (err) {
        if (signal.aborted) return;
        // The same failure again (no cluster configured, say) is reported once, and retried less and less often.
        const message = (err as Error)?.message ?? String(err);
        if (message !== lastError) this.onError(err);
        lastError = message;
        failures++;
        await new Promise((r) => setTimeout(r, Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** (failures - 1))).unref());
      }
    }
  }

  private replaceAll(resource: 'deployments' | 'pods', items: KObj[]): void {
    const map = resource === 'deployments' ? this.deployments : this.podsByName;
    const seen = new Set(items.map((o) => o.metadata?.name ?? ''));
    for (const name of [...map.keys()]) if (!seen.has(name)) this.apply(resource, 'DELETED', map.get(name)!);
    for (const o of items) this.apply(resource, map.has(o.metadata?.name ?? '') ? 'MODIFIED' : 'ADDED', o);
  }

  private apply(resource: 'deployments' | 'pods', type: string, obj: KObj): void {
    const name = obj.metadata?.name ?? '';
    if (resource === 'deployments') {
      if (type === 'DELETED') this.deployments.delete(name);
      else this.deployments.set(name, obj);
      this.changed(name, type === 'DELETED');
      return;
    }
    const worker = obj.metadata?.labels?.[INSTANCE] ?? '';
    if (type === 'DELETED') {
      this.podsByName.delete(name);
      this.restarts.delete(name);
      this.warned.delete(`crash:${name}`);
      this.warned.delete(`ready:${name}`);
    } else {
      this.podsByName.set(name, obj);
      this.checkCrash(worker, podView(obj));
    }
    this.changed(worker, false);
  }

  private checkCrash(worker: string, pod: PodView): void {
    const before = this.restarts.get(pod.name);
    this.restarts.set(pod.name, pod.restarts);
    const crashLooping = pod.reason !== null && CRASH_REASONS.has(pod.reason);
    const rose = before !== undefined && pod.restarts > before;
    const wasLooping = this.warned.has(`crash:${pod.name}`);
    if ((crashLooping && !wasLooping) || rose)
      this.emit({
        event: 'container_crashed',
        data: { container_id: worker, pod: pod.name, reason: pod.reason, restarts: pod.restarts, message: pod.message },
      });
    if (crashLooping) this.warned.add(`crash:${pod.name}`);
    else this.warned.delete(`crash:${pod.name}`);
  }

  private checkHealth(pod: PodView, obj: KObj, now: number): void {
    const key = `ready:${pod.name}`;
    if (pod.ready || !pod.not_ready_since) return void this.warned.delete(key);
    const since = Date.parse(pod.not_ready_since);
    if (!Number.isFinite(since) || now - since < this.options.healthWarningMs || this.warned.has(key)) return;
    this.warned.add(key);
    this.emit({
      event: 'container_health_warning',
      data: {
        container_id: obj.metadata?.labels?.[INSTANCE] ?? '',
        pod: pod.name,
        not_ready_seconds: Math.round((now - since) / 1000),
        reason: pod.reason,
      },
    });
  }

  private viewOf(name: string): { view: WorkerView; pods: PodView[] } {
    const pods = [...this.podsByName.values()].filter((p) => p.metadata?.labels?.[INSTANCE] === name).map(podView);
    return { view: workerView(this.deployments.get(name)!, pods), pods };
  }

  /** Emits status_changed when the worker's status is not the one last seen. */
  private changed(name: string, deleted: boolean): void {
    const before = this.lastStatus.get(name) ?? null;
    if (deleted || !this.deployments.has(name)) {
      this.lastStatus.delete(name);
      if (deleted && before !== null)
        this.emit({
          event: 'status_changed',
          data: {
            kind: 'container',
            id: name,
            container_id: name,
            from: before,
            to: 'deleted',
            worker: {
              container_id: name,
              name,
              namespace: '',
              image: null,
              status: 'deleting',
              health: 'none',
              replicas: 0,
              ready_replicas: 0,
              available_replicas: 0,
              created_at: null,
            },
          },
        });
      return;
    }
    const { view } = this.viewOf(name);
    if (view.status === before) return;
    this.lastStatus.set(name, view.status);
    this.emit({
      event: 'status_changed',
      data: { kind: 'container', id: name, container_id: name, from: before, to: view.status, worker: view },
    });
  }
}
