import { execFileSync } from 'node:child_process';
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

let clockTicksPerSecond: number | undefined;

/** User + system CPU seconds one process has used so far (utime + stime of /proc/<pid>/stat), or 0 once it has gone. */
export function cpuSeconds(pid: number): number {
  clockTicksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  try {
    // The command name (field 2) may hold spaces and parentheses: count the fields after its closing ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds that a process and its live descendants (Berth's embedded redis-server) spend while `work` runs:
 * the other engineers' load on this machine stretches wall time far more than the work a server does.
 */
export async function measureCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const total = () => [pid, ...descendantPids(pid)].reduce((sum, each) => sum + cpuSeconds(each), 0);
  const before = total();
  const result = await work();
  return { result, cpuSeconds: total() - before };
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

/** Clock ticks per second of the CPU times in `/proc/<pid>/stat` (USER_HZ: 100 on every Linux architecture this runs on). */
const USER_HZ = 100;

/** A process's utime, stime, cutime and cstime (fields 14-17 of `/proc/<pid>/stat`) in ms; zeros once it has gone. */
function cpuFieldsMs(pid: number | 'self'): [number, number, number, number] {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command's closing parenthesis start at field 3 (state).
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ms = (index: number) => (Number(fields[index]) * 1000) / USER_HZ;
    return [ms(11), ms(12), ms(13), ms(14)];
  } catch {
    return [0, 0, 0, 0];
  }
}

/** CPU time (user + system, ms) a daemon and its live descendants (dockerd's containerd) have used, reaped children included. */
export function treeCpuMs(pid: number): number {
  return [pid, ...descendantPids(pid)].reduce((sum, each) => sum + cpuFieldsMs(each).reduce((a, b) => a + b, 0), 0);
}

/** CPU time (ms) of the children this process has waited for: its difference over a spawned CLI's run is that CLI's. */
export function reapedChildrenCpuMs(): number {
  const [, , cutime, cstime] = cpuFieldsMs('self');
  return cutime + cstime;
}
