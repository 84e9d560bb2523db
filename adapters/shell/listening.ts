/**
 * Whether a port is bound in a process's network namespace, read from /proc/<pid>/net: nothing connects
 * to the port (a server such as iperf3 counts every connection as a client), and a process started in
 * another namespace (ip netns exec) is looked at in its own.
 */
import { existsSync, readFileSync } from 'node:fs';

export type Protocol = 'tcp' | 'udp';

const TCP_LISTEN = '0A';

/** True when a socket of `protocol` is bound to `port` (listening, for TCP) in the namespace of `pid`. */
export function portBound(pid: number, port: number, protocol: Protocol): boolean {
  for (const file of [protocol, `${protocol}6`]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue; // no IPv6, or the process is gone
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4) continue;
      const local = cols[1]!;
      const bound = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      if (bound === port && (protocol === 'udp' || cols[3] === TCP_LISTEN)) return true;
    }
  }
  return false;
}

/** Whether this machine has the /proc files portBound reads (Linux). */
export function canSeePorts(): boolean {
  return existsSync('/proc/self/net/tcp');
}
