import { readFileSync, readdirSync } from 'node:fs';

/** Resident set size of one process in bytes (VmRSS), or 0 once it has gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Proportional set size of one process in bytes (Pss in smaps_rollup), or 0 once it has gone: its private pages
 * plus its share of the pages it maps with others. Unlike RSS, summing it over many processes of one program
 * (Node shims sharing the node binary) counts each shared page once.
 */
export function pssBytes(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** All live descendants of a process (children of every thread, recursively). */
export function descendantPids(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) children = children.concat(text.split(/\s+/).map(Number));
    }
  } catch {
    return [];
  }
  return children.concat(children.flatMap(descendantPids));
}

export interface RssPeaks {
  /** Peak RSS of the server process itself. */
  process: number;
  /** Peak of the summed RSS of the server and its child processes (Berth's embedded redis-server). */
  tree: number;
}

/** Samples a process's RSS every `intervalMs` while `work` runs, and returns the peaks. */
export async function sampleRss(pid: number, work: () => Promise<void>, intervalMs = 100): Promise<RssPeaks> {
  const peaks: RssPeaks = { process: 0, tree: 0 };
  const sample = () => {
    const own = rssBytes(pid);
    const tree = own + descendantPids(pid).reduce((sum, child) => sum + rssBytes(child), 0);
    peaks.process = Math.max(peaks.process, own);
    peaks.tree = Math.max(peaks.tree, tree);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  try {
    await work();
  } finally {
    clearInterval(timer);
    sample();
  }
  return peaks;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux architecture this runs on). */
const TICKS_PER_SECOND = 100;
/** Where utime, stime, cutime and cstime (fields 14-17 of /proc/PID/stat) start after the command name. */
const OWN_CPU = 11;
const CHILDREN_CPU = 13;
const CPU_END = 15;

/** CPU seconds from /proc/PID/stat's fields [from, CPU_END), or 0 once the process has gone. */
function statCpuSeconds(pid: number | 'self', from: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count the fields after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields.slice(from, CPU_END).reduce((sum, field) => sum + Number(field), 0) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds (user + system) a server has used so far: the process and its live descendants (Berth's embedded
 * redis-server, dockerd's containerd), with the children they reaped.
 */
export function treeCpuSeconds(pid: number): number {
  return [pid, ...descendantPids(pid)].reduce((sum, member) => sum + statCpuSeconds(member, OWN_CPU), 0);
}

/** CPU seconds of this process's children that have exited and been waited for: a timed command's, once it closed. */
export function exitedChildrenCpuSeconds(): number {
  return statCpuSeconds('self', CHILDREN_CPU);
}

/**
 * CPU seconds that a server (treeCpuSeconds) spends while `work` runs: the other engineers' load on this
 * machine stretches wall time far more than the work a server does.
 */
export async function measureCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const before = treeCpuSeconds(pid);
  const result = await work();
  return { result, cpuSeconds: treeCpuSeconds(pid) - before };
}
