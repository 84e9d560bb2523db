import type http from 'node:http';
import type { KObj } from './json.js';
import { err, fieldErr, type FieldError } from './status.js';

/**
 * Container logs for `GET /api/v1/namespaces/{ns}/pods/{name}/log`, with the query parameters of
 * PodLogOptions (container, previous, sinceSeconds, sinceTime, timestamps, tailLines, limitBytes,
 * follow, stream) and the apiserver's/kubelet's errors for bad requests.
 */

export interface LogLine {
  text: string;
  /** When the line was written; default: when it was handed to the fake. */
  time?: Date | string | number;
  /** Default stdout. */
  stream?: 'stdout' | 'stderr';
}

export interface StoredLine {
  text: string;
  time: Date;
  stream: 'stdout' | 'stderr';
}

interface ContainerLogs {
  current: StoredLine[];
  previous?: StoredLine[];
}

type Follower = (lines: StoredLine[]) => void;

function norm(lines: LogLine[]): StoredLine[] {
  const now = Date.now();
  return lines.map((l) => ({
    text: l.text,
    time: l.time === undefined ? new Date(now) : new Date(l.time),
    stream: l.stream ?? 'stdout',
  }));
}

export class LogStore {
  private readonly logs = new Map<string, ContainerLogs>();
  private readonly followers = new Map<string, Set<Follower>>();

  private key(ns: string, pod: string, container: string): string {
    return `${ns}/${pod}/${container}`;
  }

  set(ns: string, pod: string, container: string, lines: LogLine[], previous?: LogLine[]): void {
    this.logs.set(this.key(ns, pod, container), {
      current: norm(lines),
      ...(previous ? { previous: norm(previous) } : {}),
    });
  }

  append(ns: string, pod: string, container: string, lines: LogLine[]): void {
    const k = this.key(ns, pod, container);
    const entry = this.logs.get(k) ?? { current: [] };
    const added = norm(lines);
    entry.current.push(...added);
    this.logs.set(k, entry);
    for (const f of this.followers.get(k) ?? []) f(added);
  }

  get(ns: string, pod: string, container: string): ContainerLogs | undefined {
    return this.logs.get(this.key(ns, pod, container));
  }

  follow(ns: string, pod: string, container: string, f: Follower): () => void {
    const k = this.key(ns, pod, container);
    let set = this.followers.get(k);
    if (!set) {
      set = new Set();
      this.followers.set(k, set);
    }
    set.add(f);
    return () => void set!.delete(f);
  }

  /** Forgets a pod's logs (when it is deleted). */
  dropPod(ns: string, pod: string): void {
    for (const k of [...this.logs.keys()]) if (k.startsWith(`${ns}/${pod}/`)) this.logs.delete(k);
  }
}

/** The kubelet's timestamp prefix: RFC 3339 with nine fractional digits. */
export function logTimestamp(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

export interface LogFilter {
  sinceMs?: number;
  tailLines?: number;
  timestamps: boolean;
  stream: 'All' | 'Stdout' | 'Stderr';
}

export function selectLines(lines: StoredLine[], f: LogFilter): StoredLine[] {
  let out = lines;
  if (f.stream !== 'All') out = out.filter((l) => l.stream === f.stream.toLowerCase());
  if (f.sinceMs !== undefined) out = out.filter((l) => l.time.getTime() >= f.sinceMs!);
  if (f.tailLines !== undefined) out = f.tailLines === 0 ? [] : out.slice(-f.tailLines);
  return out;
}

export function renderLines(lines: StoredLine[], timestamps: boolean): string {
  return lines.map((l) => `${timestamps ? `${logTimestamp(l.time)} ` : ''}${l.text}\n`).join('');
}

export interface LogStreamHost {
  logs: LogStore;
  /** Calls back when the pod is deleted (a followed stream then ends); returns the unsubscribe. */
  onPodGone(cb: () => void): () => void;
  /** Registers an open stream so the server can end it on close; returns the unregister. */
  track(res: http.ServerResponse, cleanup: () => void): () => void;
}

const TRUE_VALUES = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);

/** Answers GET pods/{name}/log for an existing pod: PodLogOptions validation, container choice, kubelet checks. */
export function servePodLog(res: http.ServerResponse, pod: KObj, q: URLSearchParams, host: LogStreamHost): void {
  const podName = pod.metadata!.name!;
  const ns = pod.metadata!.namespace!;
  const names = (list: unknown) => (Array.isArray(list) ? list.map((c: any) => String(c?.name)) : []);
  const containers = names(pod.spec?.containers);
  const initContainers = names(pod.spec?.initContainers);
  const ephemeral = names(pod.spec?.ephemeralContainers);
  let container = q.get('container') ?? '';

  // PodLogOptions validation (422)
  const errs: FieldError[] = [];
  const intParam = (k: string) => {
    const v = q.get(k);
    if (v === null) return undefined;
    if (!/^-?\d+$/.test(v))
      throw err.badRequest(`${k}: strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
    return Number(v);
  };
  const tailLines = intParam('tailLines');
  const sinceSeconds = intParam('sinceSeconds');
  const limitBytes = intParam('limitBytes');
  const sinceTime = q.get('sinceTime');
  if (tailLines !== undefined && tailLines < 0)
    errs.push(fieldErr.invalid('tailLines', tailLines, 'must be greater than or equal to 0'));
  if (limitBytes !== undefined && limitBytes < 1)
    errs.push(fieldErr.invalid('limitBytes', limitBytes, 'must be greater than 0'));
  if (sinceSeconds !== undefined && sinceSeconds < 1)
    errs.push(fieldErr.invalid('sinceSeconds', sinceSeconds, 'must be greater than 0'));
  if (sinceSeconds !== undefined && sinceTime !== null)
    errs.push(fieldErr.forbidden('', 'at most one of `sinceTime` or `sinceSeconds` may be specified'));
  const stream = q.get('stream') ?? 'All';
  if (!['All', 'Stdout', 'Stderr'].includes(stream))
    errs.push(fieldErr.notSupported('stream', stream, ['All', 'Stderr', 'Stdout']));
  if (errs.length > 0) throw err.invalid('', 'PodLogOptions', podName, errs);
  let sinceMs: number | undefined;
  if (sinceSeconds !== undefined) sinceMs = Date.now() - sinceSeconds * 1000;
  if (sinceTime !== null) {
    const t = Date.parse(sinceTime);
    if (Number.isNaN(t))
      throw err.badRequest(
        `parsing time ${JSON.stringify(sinceTime)} as "2006-01-02T15:04:05Z07:00": cannot parse ${JSON.stringify(sinceTime)} as "2006"`,
      );
    sinceMs = t;
  }

  // container resolution (pod strategy LogLocation)
  if (container === '') {
    if (containers.length === 1) container = containers[0]!;
    else if (containers.length === 0) throw err.badRequest(`a container name must be specified for pod ${podName}`);
    else {
      let msg = `a container name must be specified for pod ${podName}, choose one of: [${containers.join(' ')}]`;
      if (initContainers.length > 0) msg += ` or one of the init containers: [${initContainers.join(' ')}]`;
      throw err.badRequest(msg);
    }
  } else if (![...containers, ...initContainers, ...ephemeral].includes(container)) {
    throw err.badRequest(`container ${container} is not valid for pod ${podName}`);
  }

  // kubelet checks against the container's status
  const previous = TRUE_VALUES.has(q.get('previous') ?? '');
  const statuses = [
    ...(pod.status?.containerStatuses ?? []),
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.ephemeralContainerStatuses ?? []),
  ];
  const cs = statuses.find((s: any) => s?.name === container);
  const stored = host.logs.get(ns, podName, container);
  let lines = stored?.current ?? [];
  if (previous) {
    if (stored?.previous) lines = stored.previous;
    else if (cs?.lastState?.terminated) lines = [];
    else throw err.badRequest(`previous terminated container "${container}" in pod "${podName}" not found`);
  } else if (!stored && cs && !cs.state?.running && !cs.state?.terminated && !cs.lastState?.terminated) {
    const reason = cs.state?.waiting?.reason;
    if (reason === 'ErrImagePull')
      throw err.badRequest(`container "${container}" in pod "${podName}" is waiting to start: image can't be pulled`);
    if (reason === 'ImagePullBackOff')
      throw err.badRequest(
        `container "${container}" in pod "${podName}" is waiting to start: trying and failing to pull image`,
      );
    if (reason !== undefined)
      throw err.badRequest(`container "${container}" in pod "${podName}" is waiting to start: ${reason}`);
    throw err.badRequest(`container "${container}" in pod "${podName}" is waiting to start - no logs yet`);
  }

  const timestamps = TRUE_VALUES.has(q.get('timestamps') ?? '');
  const filter: LogFilter = { sinceMs, tailLines, timestamps, stream: stream as LogFilter['stream'] };
  let text = renderLines(selectLines(lines, filter), timestamps);
  let budget = limitBytes;
  const cut = (s: string): string => {
    if (budget === undefined) return s;
    const buf = Buffer.from(s, 'utf8').subarray(0, budget);
    budget -= buf.length;
    return buf.toString('utf8');
  };
  text = cut(text);
  const follow = TRUE_VALUES.has(q.get('follow') ?? '') && !previous;
  if (!follow) {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  if (text) res.write(text);
  const stopFollow = host.logs.follow(ns, podName, container, (added) => {
    const more = cut(renderLines(selectLines(added, { ...filter, tailLines: undefined }), timestamps));
    if (more) res.write(more);
    if (budget !== undefined && budget <= 0) done();
  });
  const stopGone = host.onPodGone(() => done());
  let untrack = () => {};
  const cleanup = () => {
    stopFollow();
    stopGone();
    untrack();
  };
  const done = () => {
    cleanup();
    res.end();
  };
  untrack = host.track(res, cleanup);
  res.on('close', cleanup);
}
