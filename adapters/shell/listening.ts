/**
 * Whether a process group has bound a port, read from /proc: the sockets bound to the port in the leader's
 * network namespace (/proc/<pid>/net), and whether one of them is open in a process of the group
 * (/proc/<member>/fd). Nothing connects to the port (a server such as iperf3 counts every connection as a
 * client), a process started in another namespace (ip netns exec) is looked at in its own, and a port that
 * another program holds does not count.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { procPids, procStat } from '../shared/proc.js';

export type Protocol = 'tcp' | 'udp';

const TCP_LISTEN = '0A';

/** Inodes of the sockets of `protocol` bound to `port` (listening, for TCP) in the namespace of `pid`. */
export function boundSockets(pid: number, port: number, protocol: Protocol): Set<string> {
  const inodes = new Set<string>();
  for (const file of [protocol, `${protocol}6`]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue; // no IPv6, or the process is gone
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const local = cols[1]!;
      const bound = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      if (bound === port && (protocol === 'udp' || cols[3] === TCP_LISTEN)) inodes.add(cols[9]!);
    }
  }
  return inodes;
}

/** Pids of the processes in process group `pgid` (its leader first). */
function groupMembers(pgid: number): number[] {
  return [pgid, ...procPids().filter((pid) => pid !== pgid && procStat(pid)?.pgid === pgid)];
}

/** True when a process of group `pgid` holds a socket of `protocol` bound to `port`. */
export function portBoundByGroup(pgid: number, port: number, protocol: Protocol): boolean {
  const inodes = boundSockets(pgid, port, protocol);
  if (inodes.size === 0) return false; // the cheap check first: nothing bound to the port at all
  for (const member of groupMembers(pgid)) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${member}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${member}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return true;
      } catch {
        // closed meanwhile
      }
    }
  }
  return false;
}

/** Whether this machine has the /proc files portBoundByGroup reads (Linux). */
export function canSeePorts(): boolean {
  return existsSync('/proc/self/net/tcp');
}
