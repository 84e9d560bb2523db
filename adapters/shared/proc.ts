/** Processes as Linux's /proc shows them: what process-group bookkeeping reads. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  /** One letter: R, S, D, Z (a zombie: exited, not reaped yet), … */
  state: string;
  pgid: number;
  /** Start time in clock ticks since boot: tells a pid the kernel gave out again apart. */
  startTicks: number;
}

/** /proc/<pid>/stat; undefined when the process is gone (or there is no /proc). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses: fields follow the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, pgid: Number(fields[2]), startTicks: Number(fields[19]) };
}

/** Every pid in /proc (none where there is no /proc). */
export function procPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
  } catch {
    return [];
  }
}
