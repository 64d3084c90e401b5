import type { Role } from './container-engines.js';
import { median, percentile } from './measurements.js';
import { alignColumns, formatBytes, formatNumber, formatTable, type Row } from './report.js';
import type { CommandTiming } from './timed-command.js';

/** One tool's samples: run timings (ms) or pull times (ms, the exit). */
export interface Measured<T> {
  name: string;
  role: Role;
  /** Shown next to the name, e.g. the network mode. */
  detail?: string;
  samples: T[];
}

/** One pull: its wall time, the CPU time of the processes that did it, and the machine's load when it started. */
export interface PullSample {
  wallMs: number;
  /** The CLI (and for skopeo, all the work). */
  clientCpuMs: number;
  /** The daemon that did the work for the CLI (the agent; dockerd with its containerd); 0 for skopeo. */
  daemonCpuMs: number;
  /** The registry serving the pull: the same for every tool, unless a tool fetches differently. */
  registryCpuMs: number;
  /** The 1-minute load average. */
  load: number;
}

/** One `run --rm IMG echo hi`: its timings, the CPU time of the CLI and its daemon's tree, the load when it started. */
export interface RunSample extends CommandTiming {
  cpuMs: number;
  /** The 1-minute load average. */
  load: number;
}

export interface AgentBenchResults {
  /** Empty with --pull-only. */
  runs: Measured<RunSample>[];
  pulls: Measured<PullSample>[];
  /** What the pull downloads: layer count and total compressed bytes. */
  pullImage: { layers: number; bytes: number };
}

const ratio = (berth: number, other: number) => `${formatNumber(berth / other)}x`;

function only<T>(measured: Measured<T>[], role: Role): Measured<T> {
  const found = measured.find((m) => m.role === role);
  if (!found) throw new Error(`no ${role} measurement`);
  return found;
}

/** Berth against docker, in the style of the other benchmarks: the targets are docker's figures. */
export function targetTable({ runs, pulls, pullImage }: AgentBenchResults): string {
  const pick = (measured: Measured<CommandTiming>, field: keyof CommandTiming, stat: (values: number[]) => number) =>
    stat(measured.samples.map((sample) => sample[field]));
  const p90 = (values: number[]) => percentile(values, 0.9);
  const atMost = (b: number, d: number) => ({ text: "<= docker's", met: b <= d });
  const runRow = (label: string, field: keyof CommandTiming, stat: (values: number[]) => number, target: boolean): Row => {
    const berth = pick(only(runs, 'berth'), field, stat);
    const docker = pick(only(runs, 'docker'), field, stat);
    return { label, unit: 'ms', berth, reference: docker, ratio: true, target: target ? atMost(berth, docker) : undefined };
  };
  const berthPull = median(only(pulls, 'berth').samples.map(wallMs)) / 1000;
  const dockerPull = median(only(pulls, 'docker').samples.map(wallMs)) / 1000;
  const runRows =
    runs.length === 0
      ? []
      : [
          runRow('run --rm, --network none: first output, median', 'firstOutputMs', median, true),
          runRow('run --rm, --network none: first output, p90', 'firstOutputMs', p90, false),
          runRow('run --rm, --network none: exit, median', 'exitMs', median, false),
          runRow('run --rm, --network none: exit, p90', 'exitMs', p90, false),
        ];
  return formatTable(
    [
      ...runRows,
      {
        label: `pull ${pullImage.layers} layers, ${formatBytes(pullImage.bytes)}: median`,
        unit: 's',
        berth: berthPull,
        reference: dockerPull,
        ratio: true,
        target: atMost(berthPull, dockerPull),
      },
    ],
    { name: 'docker', short: 'docker' },
  );
}

/** Every tool's run latency, with Berth's (network none) over each other tool's. */
export function runTable(runs: Measured<CommandTiming>[]): string {
  const berth = only(runs, 'berth');
  const stats = (m: Measured<CommandTiming>) => {
    const first = m.samples.map((sample) => sample.firstOutputMs);
    const exit = m.samples.map((sample) => sample.exitMs);
    return { first: median(first), firstP90: percentile(first, 0.9), exit: median(exit), exitP90: percentile(exit, 0.9) };
  };
  const own = stats(berth);
  const body = runs.map((m) => {
    const s = stats(m);
    const compared = m.role !== 'berth' && m.detail === berth.detail;
    return [
      m.name,
      m.detail ?? '',
      formatNumber(s.first),
      formatNumber(s.firstP90),
      formatNumber(s.exit),
      formatNumber(s.exitP90),
      compared ? ratio(own.first, s.first) : '',
      compared ? ratio(own.exit, s.exit) : '',
    ];
  });
  const header = ['run --rm IMG echo hi', 'network', 'first output ms', 'p90', 'exit ms', 'p90', 'Berth/x first', 'Berth/x exit'];
  return alignColumns(header, body, (column) => column >= 2);
}

/** Every run of every tool, round by round, with Berth's first output, exit and CPU over the tool's in that round. */
export function runRoundsTable(runs: Measured<RunSample>[]): string {
  const berth = only(runs, 'berth').samples;
  const body = runs.flatMap((m) =>
    m.samples.map((sample, round) => {
      const own = berth[round]!;
      const over = (field: keyof RunSample) => (m.role === 'berth' ? '' : ratio(own[field], sample[field]));
      return [
        String(round + 1),
        m.name,
        formatNumber(sample.load),
        formatNumber(sample.firstOutputMs),
        formatNumber(sample.exitMs),
        formatNumber(sample.cpuMs),
        over('firstOutputMs'),
        over('exitMs'),
        over('cpuMs'),
      ];
    }),
  );
  body.sort((a, b) => Number(a[0]) - Number(b[0]));
  const header = ['run', 'tool', 'load', 'first output', 'exit', 'CPU', 'Berth/x first', 'Berth/x exit', 'Berth/x CPU'];
  return alignColumns(header, body, (column) => column !== 1);
}

const wallMs = (sample: PullSample) => sample.wallMs;
/** What the pull cost the tool itself: its CLI and its daemon. */
const toolCpuMs = (sample: PullSample) => sample.clientCpuMs + sample.daemonCpuMs;

/**
 * Every tool's pull time (median, fastest, slowest), throughput and CPU time (median), with Berth's over each
 * other tool's.
 */
export function pullTable({ pulls, pullImage }: AgentBenchResults): string {
  const berth = only(pulls, 'berth').samples;
  const body = pulls.map((m) => {
    const times = m.samples.map(wallMs);
    const ms = median(times);
    const cpu = median(m.samples.map(toolCpuMs));
    return [
      m.name,
      formatNumber(ms / 1000),
      formatNumber(Math.min(...times) / 1000),
      formatNumber(Math.max(...times) / 1000),
      formatNumber(pullImage.bytes / 1e6 / (ms / 1000)),
      formatNumber(cpu / 1000),
      formatNumber(median(m.samples.map((sample) => sample.registryCpuMs)) / 1000),
      m.role === 'berth' ? '' : ratio(median(berth.map(wallMs)), ms),
      m.role === 'berth' ? '' : ratio(median(berth.map(toolCpuMs)), cpu),
    ];
  });
  const header = [
    `pull ${pullImage.layers} layers, ${formatBytes(pullImage.bytes)}`,
    'median s',
    'min s',
    'max s',
    'MB/s',
    'CPU s',
    'registry CPU s',
    'Berth/x time',
    'Berth/x CPU',
  ];
  return alignColumns(header, body, (column) => column >= 1);
}

/** Every pull of every round (the tools took turns), with Berth's time and CPU over the other tool's of the same round. */
export function pullRunsTable(pulls: Measured<PullSample>[]): string {
  const berth = only(pulls, 'berth').samples;
  const body = pulls.flatMap((m) =>
    m.samples.map((sample, round) => [
      String(round + 1),
      m.name,
      formatNumber(sample.load),
      formatNumber(sample.wallMs / 1000),
      formatNumber(sample.clientCpuMs / 1000),
      formatNumber(sample.daemonCpuMs / 1000),
      formatNumber(sample.registryCpuMs / 1000),
      m.role === 'berth' ? '' : ratio(berth[round]!.wallMs, sample.wallMs),
      m.role === 'berth' ? '' : ratio(toolCpuMs(berth[round]!), toolCpuMs(sample)),
    ]),
  );
  body.sort((a, b) => Number(a[0]) - Number(b[0]));
  const header = ['run', 'tool', 'load', 'wall s', 'CLI CPU s', 'daemon CPU s', 'registry CPU s', 'Berth/x time', 'Berth/x CPU'];
  return alignColumns(header, body, (column) => column !== 1);
}
