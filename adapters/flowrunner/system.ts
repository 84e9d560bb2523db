/**
 * Container and system numbers for the control API's `/api/metrics` and `/metrics`
 * (docs/flowrunner.md#control-api): CPU from /proc/stat (the host's, as psutil reports it) and from the
 * cgroup (the container's, for `container_cpu_percent`), memory from the cgroup when the container is
 * limited (else /proc/meminfo), network counters from /proc/net/dev with psutil's names. Reads are small
 * procfs/cgroupfs files; nothing here throws: a missing or odd file gives zeros.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** psutil's `net_io_counters()` names, summed over every interface but loopback. */
export interface NetworkCounters {
  bytes_sent: number;
  bytes_recv: number;
  packets_sent: number;
  packets_recv: number;
  errin: number;
  errout: number;
  dropin: number;
  dropout: number;
}

type Counter = keyof NetworkCounters;

/** psutil's names in its order, each with the /proc/net/dev column it sums (receive from column 0, transmit from 8). */
const NET_DEV_COLUMNS: ReadonlyArray<readonly [Counter, number]> = [
  ['bytes_sent', 8],
  ['bytes_recv', 0],
  ['packets_sent', 9],
  ['packets_recv', 1],
  ['errin', 2],
  ['errout', 10],
  ['dropin', 3],
  ['dropout', 11],
];

export interface SystemNumbers {
  cpu_percent: number;
  memory_percent: number;
  memory_available_mb: number;
  memory_used_mb: number;
}

export interface SystemPaths {
  /** Where procfs is mounted (`/proc`). */
  proc: string;
  /** Where the cgroup hierarchy is mounted (`/sys/fs/cgroup`). */
  cgroup: string;
}

/** A CPU reading newer than this is answered from the last one: two scrapes a millisecond apart would divide noise by noise. */
export const MIN_CPU_WINDOW_MS = 250;
const MB = 1024 * 1024;
/** cgroup v1 writes "no limit" as a page-rounded 2^63 - 1. */
const V1_UNLIMITED = 2 ** 60;

/** The process's own cgroup per hierarchy, as /proc/self/cgroup names them ('' for the root). */
interface CgroupPaths {
  unified?: string;
  memory?: string;
  cpu?: string;
  cpuacct?: string;
}

interface CpuTimes {
  busy: number;
  total: number;
  at: number;
}

const round = (n: number, digits = 1) => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

export class SystemSampler {
  private readonly paths: SystemPaths;
  private lastCpu: CpuTimes = { busy: 0, total: 0, at: 0 };
  private lastPercent = 0;
  private lastUsage: { usageUs: number; at: number } | undefined;
  private lastContainerPercent = 0;
  /** The process's cgroup paths (v2 unified, v1 memory and cpu accounting), read once. */
  private cgroupPaths?: CgroupPaths;

  constructor(
    paths: Partial<SystemPaths> = {},
    private readonly now: () => number = Date.now,
    /** CPUs the process may run on: the allowance of a container without a CPU quota. */
    private readonly cpus: () => number = availableParallelism,
  ) {
    this.paths = { proc: paths.proc ?? '/proc', cgroup: paths.cgroup ?? '/sys/fs/cgroup' };
  }

  /**
   * System-wide CPU use in percent since the previous reading (since boot on the first), from the `cpu`
   * line of /proc/stat: busy is everything but idle and iowait; guest time is already inside user.
   */
  cpuPercent(): number {
    const line = firstLine(this.read('proc', 'stat'));
    const f = line.startsWith('cpu ') ? line.split(/\s+/).slice(1, 9).map(Number) : [];
    if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return 0;
    const total = f.reduce((a, b) => a + b, 0);
    const idle = f[3]! + (f[4] ?? 0);
    const at = this.now();
    if (this.lastCpu.at !== 0 && at - this.lastCpu.at < MIN_CPU_WINDOW_MS) return this.lastPercent;
    const dTotal = total - this.lastCpu.total;
    const dBusy = total - idle - this.lastCpu.busy;
    if (dTotal > 0) this.lastPercent = round(Math.min(100, Math.max(0, (dBusy / dTotal) * 100)));
    this.lastCpu = { busy: total - idle, total, at };
    return this.lastPercent;
  }

  /**
   * The container's CPU use since the previous reading, in percent of what it may use: its cgroup's quota
   * (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) or, without one, every CPU it may run on.
   * Usage comes from the cgroup (v2 `cpu.stat` usage_usec, v1 `cpuacct.usage`); without a cgroup to read,
   * the host's figure (cpuPercent). The first reading has no window yet and says 0.
   */
  containerCpuPercent(): number {
    const cg = this.cgroupCpu();
    if (!cg) return this.cpuPercent();
    const at = this.now();
    const last = this.lastUsage;
    if (last && at - last.at < MIN_CPU_WINDOW_MS) return this.lastContainerPercent;
    this.lastUsage = { usageUs: cg.usageUs, at };
    if (!last || at <= last.at) return this.lastContainerPercent;
    const used = (cg.usageUs - last.usageUs) / ((at - last.at) * 1000 * cg.cores);
    this.lastContainerPercent = round(Math.min(100, Math.max(0, used * 100)));
    return this.lastContainerPercent;
  }

  /** CPU time used by the process's cgroup (µs) and the cores it may use; undefined outside a cgroup. */
  private cgroupCpu(): { usageUs: number; cores: number } | undefined {
    const own = this.ownCgroups();
    const allowance = (quota: number, period: number) => (quota > 0 && period > 0 ? quota / period : this.cpus());
    for (const dir of unique([own.unified, ''])) {
      if (dir === undefined) continue;
      const usec = statValue(this.read('cgroup', join(dir, 'cpu.stat')), 'usage_usec', Number.NaN);
      if (!Number.isFinite(usec)) continue;
      const [quota, period] = this.read('cgroup', join(dir, 'cpu.max')).trim().split(/\s+/);
      return { usageUs: usec, cores: allowance(Number(quota), Number(period)) };
    }
    for (const dir of unique([own.cpuacct, ''])) {
      if (dir === undefined) continue;
      // v1 mounts cpu and cpuacct together (cpu,cpuacct) or apart; the quota is the cpu controller's.
      for (const [acct, cpu] of [
        ['cpu,cpuacct', join('cpu,cpuacct', dir)],
        ['cpuacct', join('cpu', dir === own.cpuacct ? (own.cpu ?? dir) : dir)],
      ] as const) {
        const ns = Number(this.read('cgroup', join(acct, dir, 'cpuacct.usage')).trim() || Number.NaN);
        if (!Number.isFinite(ns)) continue;
        const quota = Number(this.read('cgroup', join(cpu, 'cpu.cfs_quota_us')).trim());
        const period = Number(this.read('cgroup', join(cpu, 'cpu.cfs_period_us')).trim());
        return { usageUs: ns / 1000, cores: allowance(quota, period) };
      }
    }
    return undefined;
  }

  /**
   * Memory as the container sees it: against the cgroup limit when there is one (v2 `memory.max`,
   * v1 `memory.limit_in_bytes`), used = current usage minus inactive file cache (what `docker stats`
   * shows); otherwise the host's /proc/meminfo (used = total - available, as psutil's percent).
   */
  memory(): Omit<SystemNumbers, 'cpu_percent'> {
    const limited = this.cgroupMemory();
    if (limited) return limited;
    const info = this.read('proc', 'meminfo');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(info);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    const total = kb('MemTotal') ?? 0;
    const available = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
    return numbers(total, Math.max(0, total - available));
  }

  system(): SystemNumbers {
    return { cpu_percent: this.cpuPercent(), ...this.memory() };
  }

  /**
   * Counters of /proc/net/dev (this process's network namespace), summed over every interface but `lo`, or
   * of `only` (zeros when it is not there).
   */
  network(only?: string): NetworkCounters {
    const out = Object.fromEntries(NET_DEV_COLUMNS.map(([counter]) => [counter, 0])) as Record<Counter, number>;
    for (const line of this.read('proc', 'net/dev').split('\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      if (only === undefined ? name === 'lo' || name === '' : name !== only) continue;
      // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop ...
      const f = line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .map(Number);
      if (f.length < 12 || f.some((x) => !Number.isFinite(x))) continue;
      for (const [counter, column] of NET_DEV_COLUMNS) out[counter] += f[column]!;
    }
    return out;
  }

  private cgroupMemory(): Omit<SystemNumbers, 'cpu_percent'> | undefined {
    const own = this.ownCgroups();
    // v2: the process's own group, then the mount root (a container with its own cgroup namespace sees itself there).
    for (const dir of unique([own.unified, ''])) {
      if (dir === undefined) continue;
      const max = this.read('cgroup', join(dir, 'memory.max')).trim();
      if (max === '' || max === 'max') continue;
      const limit = Number(max);
      const current = Number(this.read('cgroup', join(dir, 'memory.current')).trim());
      if (!(limit > 0) || !Number.isFinite(current)) continue;
      return numbers(limit, current - statValue(this.read('cgroup', join(dir, 'memory.stat')), 'inactive_file'));
    }
    for (const dir of unique([own.memory, ''])) {
      if (dir === undefined) continue;
      const limit = Number(this.read('cgroup', join('memory', dir, 'memory.limit_in_bytes')).trim());
      if (!(limit > 0) || limit >= V1_UNLIMITED) continue;
      const usage = Number(this.read('cgroup', join('memory', dir, 'memory.usage_in_bytes')).trim());
      if (!Number.isFinite(usage)) continue;
      const stat = this.read('cgroup', join('memory', dir, 'memory.stat'));
      return numbers(limit, usage - (statValue(stat, 'total_inactive_file') || statValue(stat, 'inactive_file')));
    }
    return undefined;
  }

  private ownCgroups(): CgroupPaths {
    if (this.cgroupPaths) return this.cgroupPaths;
    const out: CgroupPaths = {};
    for (const line of this.read('proc', 'self/cgroup').split('\n')) {
      const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
      if (path === undefined || path.includes('..')) continue;
      const dir = path === '/' ? '' : path;
      if (controllers === '') out.unified = dir;
      else {
        const names = controllers!.split(',');
        if (names.includes('memory')) out.memory = dir;
        if (names.includes('cpuacct')) out.cpuacct = dir;
        if (names.includes('cpu')) out.cpu = dir;
      }
    }
    this.cgroupPaths = out;
    return out;
  }

  private read(root: keyof SystemPaths, file: string): string {
    try {
      return readFileSync(join(this.paths[root], file), 'utf8');
    } catch {
      return '';
    }
  }
}

function numbers(totalBytes: number, usedBytes: number): Omit<SystemNumbers, 'cpu_percent'> {
  if (!(totalBytes > 0)) return { memory_percent: 0, memory_available_mb: 0, memory_used_mb: 0 };
  const used = Math.min(totalBytes, Math.max(0, usedBytes));
  return {
    memory_percent: round((used / totalBytes) * 100),
    memory_available_mb: round((totalBytes - used) / MB, 2),
    memory_used_mb: round(used / MB, 2),
  };
}

function statValue(stat: string, key: string, missing = 0): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(stat);
  return m ? Number(m[1]) : missing;
}

function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return nl < 0 ? text : text.slice(0, nl);
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
