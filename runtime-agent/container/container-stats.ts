import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import { runHostCommand } from '../support/host-command.js';
import type { StatsSample, TopResult } from '../verbs-api.js';
import type { ContainerRecord } from './container-record.js';

/**
 * `stats` and `top` from the kernel's own accounts (cgroup v1, as on these hosts): the container's cgroup is
 * `/berth/<id>` under each controller (spec/oci-spec.ts), its network counters are those of its init's
 * network namespace (`/proc/<pid>/net/dev`).
 */

const CGROUP_ROOT = '/sys/fs/cgroup';
/** The kernel's USER_HZ: /proc/stat counts in hundredths of a second. */
const CLOCK_TICKS_PER_SECOND = 100;

function cgroupFile(controller: string, record: ContainerRecord, file: string): string {
  return path.join(CGROUP_ROOT, controller, 'berth', record.id, file);
}

async function readNumber(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8').catch(() => '0')).trim()) || 0;
}

export async function sampleStats(record: ContainerRecord): Promise<StatsSample> {
  const pid = runningPid(record);
  const [cpuUsageNs, systemUsageNs, memory, memoryLimit, pids, network, block] = await Promise.all([
    readNumber(cgroupFile('cpuacct', record, 'cpuacct.usage')),
    systemCpuNs(),
    memoryUsage(record),
    readNumber(cgroupFile('memory', record, 'memory.limit_in_bytes')),
    readNumber(cgroupFile('pids', record, 'pids.current')),
    networkCounters(pid),
    blockCounters(record),
  ]);
  return {
    id: record.id,
    name: record.name,
    read: new Date().toISOString(),
    cpuUsageNs,
    systemUsageNs,
    onlineCpus: cpus().length,
    memoryUsage: memory,
    // An unlimited cgroup reports a huge number: docker shows the host's memory instead.
    memoryLimit: memoryLimit > 0 && memoryLimit < totalmem() ? memoryLimit : totalmem(),
    pids,
    netRx: network.rx,
    netTx: network.tx,
    blockRead: block.read,
    blockWrite: block.write,
  };
}

function runningPid(record: ContainerRecord): number {
  if (record.state.status !== 'running' || record.state.pid === undefined)
    throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `Container ${record.id} is not running`);
  return record.state.pid;
}

/** Usage without the inactive page cache, as docker computes it on cgroup v1. */
async function memoryUsage(record: ContainerRecord): Promise<number> {
  const usage = await readNumber(cgroupFile('memory', record, 'memory.usage_in_bytes'));
  const stat = await readFile(cgroupFile('memory', record, 'memory.stat'), 'utf8').catch(() => '');
  const inactive = Number(/^total_inactive_file (\d+)$/m.exec(stat)?.[1] ?? 0);
  return inactive < usage ? usage - inactive : usage;
}

/** The host's CPU time over all cores in nanoseconds, the denominator of docker's CPU %. */
async function systemCpuNs(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const ticks = line
    .split(/\s+/)
    .slice(1, 8)
    .reduce((sum, value) => sum + (Number(value) || 0), 0);
  return (ticks / CLOCK_TICKS_PER_SECOND) * 1e9;
}

/** Bytes received and sent on every interface of the namespace but loopback. */
async function networkCounters(pid: number): Promise<{ rx: number; tx: number }> {
  const text = await readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '');
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const [name, counters] = line.split(':');
    if (!counters || name?.trim() === 'lo') continue;
    const fields = counters.trim().split(/\s+/).map(Number);
    rx += fields[0] ?? 0;
    tx += fields[8] ?? 0;
  }
  return { rx, tx };
}

async function blockCounters(record: ContainerRecord): Promise<{ read: number; write: number }> {
  const text = await readFile(cgroupFile('blkio', record, 'blkio.throttle.io_service_bytes'), 'utf8').catch(() => '');
  let read = 0;
  let write = 0;
  for (const [, operation, bytes] of text.matchAll(/^\S+ (Read|Write) (\d+)$/gm)) {
    if (operation === 'Read') read += Number(bytes);
    else write += Number(bytes);
  }
  return { read, write };
}

/**
 * `docker top`: the host's `ps` (with the user's options, `-ef` by default) limited to the processes of the
 * container's cgroup, whichever pid namespace they are in. The PID column is the host's, as docker shows.
 */
export async function topProcesses(record: ContainerRecord, psArgs: readonly string[]): Promise<TopResult> {
  runningPid(record);
  const procs = await readFile(cgroupFile('pids', record, 'cgroup.procs'), 'utf8');
  const pids = new Set(procs.split('\n').filter(Boolean));
  const output = await runHostCommand('ps', psArgs.length > 0 ? [...psArgs] : ['-ef']).catch((error: Error) => {
    throw new CodedError(AgentErrors.REQUEST_INVALID, `ps failed: ${error.message}`);
  });
  const [header = '', ...lines] = output.split('\n').filter((line) => line.trim() !== '');
  const titles = header.trim().split(/\s+/);
  const pidColumn = titles.indexOf('PID');
  if (pidColumn < 0) throw new CodedError(AgentErrors.REQUEST_INVALID, `Couldn't find PID field in ps output`);
  const processes = lines.map((line) => splitColumns(line, titles.length)).filter((columns) => pids.has(columns[pidColumn] ?? ''));
  return { Titles: titles, Processes: processes };
}

/** ps's columns: whitespace-separated, the last one (the command) keeps its spaces. */
function splitColumns(line: string, count: number): string[] {
  const fields = line.trim().split(/\s+/);
  return [...fields.slice(0, count - 1), fields.slice(count - 1).join(' ')];
}
