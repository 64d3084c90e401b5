import { PAGE_SIZE, type BlobThroughput, type MemoryUse, type TagPage } from './measurements.js';
import type { BenchOptions } from './options.js';
import type { WrkResult } from './wrk.js';

/** MB/s of the image's layer bytes, docker push / docker pull end to end. */
export interface DockerRates {
  push: number;
  pull: number;
}

export interface TargetResults {
  /** The per-field median of blobRuns. */
  blobs: BlobThroughput;
  blobRuns: BlobThroughput[];
  memory: MemoryUse;
  manifestPutsPerSecond: number;
  manifestGets: WrkResult;
  smallBlobGets: WrkResult;
  /** wrk GETs of one tag page at options.tags tags. */
  tagPageGets: WrkResult;
  /** Undefined when the docker measurement was skipped (--image-mib 0). */
  docker: DockerRates | undefined;
  tagsCreatedPerSecond: number;
  tagPages: TagPage[];
}

export interface Row {
  label: string;
  unit: string;
  berth: number;
  /** The reference implementation's figure (Distribution for the registry, docker for the agent). */
  reference: number;
  /** Whether Berth/reference is worth printing (not for derived or Berth-only targets). */
  ratio: boolean;
  target?: { text: string; met: boolean };
  /** The servers' CPU seconds for the work the row measures, where they were measured. */
  cpu?: { berth: number; reference: number };
}

const MiB = 1024 * 1024;
const RSS_LIMIT_MIB = 150;
/** "Independent of repository size": the page may get at most this much slower while the repository grows 50x. */
const PAGE_GROWTH_LIMIT = 2;

export function buildRows(berth: TargetResults, distribution: TargetResults, options: BenchOptions): Row[] {
  const size = formatBytes(options.blobBytes);
  const rssSize = formatBytes(options.rssBlobBytes);
  const atLeast = (factor: number) => (b: number, d: number) => ({ text: `>= ${factor}x Distribution`, met: b >= factor * d });
  const underRss = (b: number) => ({ text: `Berth < ${RSS_LIMIT_MIB} MiB`, met: b < RSS_LIMIT_MIB });
  const row = (label: string, unit: string, pick: (r: TargetResults) => number, target?: (b: number, d: number) => Row['target']): Row => {
    const b = pick(berth);
    const d = pick(distribution);
    return { label, unit, berth: b, reference: d, ratio: true, target: target?.(b, d) };
  };
  const pageRows = berth.tagPages.map((page, index) =>
    row(
      `tag page n=${PAGE_SIZE}, ${page.tags} tags${pageNote(distribution.tagPages[index]?.returned)}`,
      'ms',
      (r) => r.tagPages[index]?.ms ?? Number.NaN,
    ),
  );
  const growth = (r: TargetResults) => (r.tagPages.at(-1)?.ms ?? Number.NaN) / (r.tagPages[0]?.ms ?? Number.NaN);
  const smallest = berth.tagPages[0]?.tags;
  const largest = berth.tagPages.at(-1)?.tags;
  const cpu = (pick: (b: BlobThroughput) => number) => ({ berth: pick(berth.blobs), reference: pick(distribution.blobs) });
  return [
    {
      ...row(`push ${size} blob, monolithic`, 'MB/s', (r) => r.blobs.pushMonolithic, atLeast(1.5)),
      cpu: cpu((b) => b.pushMonolithicCpu),
    },
    {
      ...row(`push ${size} blob, ${formatBytes(options.chunkBytes)} chunks`, 'MB/s', (r) => r.blobs.pushChunked, atLeast(1.5)),
      cpu: cpu((b) => b.pushChunkedCpu),
    },
    { ...row(`pull ${size} blob (curl)`, 'MB/s', (r) => r.blobs.pull, atLeast(1.5)), cpu: cpu((b) => b.pullCpu) },
    row(`small blob GET 16 B-1 KiB, wrk ${options.connections} conns`, 'req/s', (r) => r.smallBlobGets.requestsPerSecond, atLeast(5)),
    row(`small blob GET p99 latency`, 'ms', (r) => r.smallBlobGets.p99Ms),
    row(`manifest PUT, ${options.concurrency} in flight`, '/s', (r) => r.manifestPutsPerSecond),
    row(`manifest GET, wrk ${options.connections} conns`, 'req/s', (r) => r.manifestGets.requestsPerSecond, atLeast(5)),
    row(`manifest GET p99 latency`, 'ms', (r) => r.manifestGets.p99Ms),
    row(`tag PUT (new tag, same manifest)`, '/s', (r) => r.tagsCreatedPerSecond),
    row(
      `tag page n=${PAGE_SIZE} at ${options.tags} tags, wrk ${options.connections} conns`,
      'req/s',
      (r) => r.tagPageGets.requestsPerSecond,
    ),
    row(
      `tag list, whole, ${options.tags} tags`,
      'ms',
      (r) => r.tagPages.find((page) => page.fullListMs !== undefined)?.fullListMs ?? Number.NaN,
    ),
    ...pageRows,
    {
      ...row(`tag page time ${largest} / ${smallest} tags`, 'x', growth),
      ratio: false,
      target: { text: `Berth <= ${PAGE_GROWTH_LIMIT}x (size-independent)`, met: growth(berth) <= PAGE_GROWTH_LIMIT },
    },
    row(`RSS idle after start`, 'MiB', (r) => r.memory.idle / MiB),
    row(`RSS peak, ${rssSize} blob streaming in`, 'MiB', (r) => r.memory.push.process / MiB, underRss),
    row(`RSS peak, ${rssSize} blob streaming out`, 'MiB', (r) => r.memory.pull.process / MiB, underRss),
    row(`RSS peak incl. child processes (redis)`, 'MiB', (r) => Math.max(r.memory.push.tree, r.memory.pull.tree) / MiB),
    ...(berth.docker && distribution.docker
      ? [
          row(`docker push, 5 layers, ${formatBytes(options.imageBytes)}`, 'MB/s', (r) => r.docker?.push ?? Number.NaN),
          row(`docker pull, 5 layers, ${formatBytes(options.imageBytes)}`, 'MB/s', (r) => r.docker?.pull ?? Number.NaN),
        ]
      : []),
  ];
}

function pageNote(returned: number | undefined): string {
  return returned !== undefined && returned > PAGE_SIZE ? ` [Distribution ignores n: sent ${returned}]` : '';
}

/**
 * The table every benchmark prints: Berth, the reference (named in the header, e.g. `Distribution`/`Dist`), their
 * ratio and the target; when rows carry CPU seconds, each server's and their ratio too.
 */
export function formatTable(rows: Row[], reference = { name: 'Distribution', short: 'Dist' }): string {
  const withCpu = rows.some((r) => r.cpu);
  const header = [
    'measurement',
    'unit',
    'Berth',
    reference.name,
    `Berth/${reference.short}`,
    ...(withCpu ? ['CPU s Berth', `CPU s ${reference.short}`, `CPU Berth/${reference.short}`] : []),
    'target',
    'status',
  ];
  const body = rows.map((r) => [
    r.label,
    r.unit,
    formatNumber(r.berth),
    formatNumber(r.reference),
    r.ratio ? formatRatio(r.berth, r.reference) : '',
    ...(withCpu ? cpuCells(r.cpu) : []),
    r.target?.text ?? '',
    r.target ? (r.target.met ? 'met' : 'NOT MET') : '',
  ]);
  const numericColumns = withCpu ? 7 : 4;
  return alignColumns(header, body, (column) => column >= 2 && column <= numericColumns);
}

function cpuCells(cpu: Row['cpu']): string[] {
  return cpu ? [formatNumber(cpu.berth), formatNumber(cpu.reference), formatRatio(cpu.berth, cpu.reference)] : ['', '', ''];
}

/** Blob runs of Berth and its reference side by side: one registry pair (a storage mode) and its label. */
export interface BlobRunPair {
  label: string;
  berth: BlobThroughput[];
  reference: BlobThroughput[];
}

/**
 * Every run's Berth/reference ratios of the blob measurements, MB/s and server CPU seconds, beside the medians of
 * the table: on a shared machine one run's ratio says little, the spread says how much.
 */
export function formatBlobRuns(pairs: BlobRunPair[]): string {
  const kinds: Array<[string, keyof BlobThroughput, keyof BlobThroughput]> = [
    ['push monolithic', 'pushMonolithic', 'pushMonolithicCpu'],
    ['push chunked', 'pushChunked', 'pushChunkedCpu'],
    ['pull', 'pull', 'pullCpu'],
  ];
  const ratios = (pair: BlobRunPair, field: keyof BlobThroughput) =>
    pair.berth.map((run, index) => formatRatio(run[field], pair.reference[index]?.[field] ?? Number.NaN)).join(' ');
  const body = pairs.flatMap((pair) =>
    kinds.map(([kind, rate, cpu]) => [`${pair.label}${pair.label ? ', ' : ''}${kind}`, ratios(pair, rate), ratios(pair, cpu)]),
  );
  return `Every run, Berth / reference:\n${alignColumns(['blob', 'MB/s ratio per run', 'CPU s ratio per run'], body, () => false)}`;
}

/** A plain-text table: columns padded to their widest cell, the numeric ones right-aligned, a dashed rule under the header. */
export function alignColumns(header: string[], body: string[][], numeric: (column: number) => boolean): string {
  const widths = header.map((_, column) => Math.max(...[header, ...body].map((cells) => (cells[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (numeric(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** `b/r` as `1.23x`, or n/a when it is not a number (a reference that measured 0 CPU ticks). */
function formatRatio(berth: number, reference: number): string {
  const ratio = berth / reference;
  return Number.isFinite(ratio) ? `${formatNumber(ratio)}x` : 'n/a';
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatBytes(bytes: number): string {
  return bytes >= 1024 * MiB ? `${+(bytes / (1024 * MiB)).toFixed(2)} GiB` : `${+(bytes / MiB).toFixed(1)} MiB`;
}
