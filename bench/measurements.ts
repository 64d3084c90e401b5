import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { blobDigest, blobStream } from './blob-data.js';
import { curlDownload } from './curl.js';
import type { BenchOptions } from './options.js';
import { measureCpu, sampleRss, type RssPeaks } from './process-stats.js';
import type { RegistryClient } from './registry-client.js';
import type { ServerProcess } from './servers.js';
import { runWrk, type WrkResult } from './wrk.js';

/** One registry under test and a client bound to it. */
export interface Target {
  name: string;
  server: ServerProcess;
  client: RegistryClient;
  /** Whether blob GETs must (true) or must not (false) answer with a redirect to storage; unchecked when absent. */
  redirect?: boolean;
}

const MANIFEST_REPOSITORY = 'bench/manifests';
export const PAGE_SIZE = 100;

export interface BlobThroughput {
  /** MB/s (10^6 bytes per second). */
  pushMonolithic: number;
  pushChunked: number;
  pull: number;
  /** The server's CPU seconds (user + system, its child processes included) for each of the three. */
  pushMonolithicCpu: number;
  pushChunkedCpu: number;
  pullCpu: number;
}

/** One push (monolithic), one push (chunked) and one pull of a blob of options.blobBytes; content differs per run. */
export async function measureBlobThroughput(target: Target, options: BenchOptions, run: number): Promise<BlobThroughput> {
  const repository = 'bench/blobs';
  const size = options.blobBytes;
  const monolithic = { seed: 1000 + run, digest: await blobDigest(1000 + run, size) };
  const chunked = { seed: 2000 + run, digest: await blobDigest(2000 + run, size) };
  const { pid } = target.server;
  const pushMonolithic = await measureCpu(pid, () =>
    throughput(size, () => target.client.pushMonolithic(repository, monolithic.digest, size, blobStream(monolithic.seed, 0, size))),
  );
  const pushChunked = await measureCpu(pid, () =>
    throughput(size, () =>
      target.client.pushChunked(repository, chunked.digest, size, options.chunkBytes, (offset, length) =>
        blobStream(chunked.seed, offset, length),
      ),
    ),
  );
  const pull = await measureCpu(pid, () => curlDownload(`${target.server.url}/v2/${repository}/blobs/${monolithic.digest}`, size));
  return {
    pushMonolithic: pushMonolithic.result,
    pushChunked: pushChunked.result,
    pull: pull.result,
    pushMonolithicCpu: pushMonolithic.cpuSeconds,
    pushChunkedCpu: pushChunked.cpuSeconds,
    pullCpu: pull.cpuSeconds,
  };
}

const SMALL_BLOB_REPOSITORY = 'bench/small';
/** Sizes of the small blobs (configs, signatures, SBOM fragments): 16 B to 1 KiB. */
const SMALL_BLOB_SIZES = Array.from({ length: 64 }, (_, index) => 16 + Math.round((index * (1024 - 16)) / 63));

/**
 * wrk GETs of 64 small blobs (16 B - 1 KiB), cycled by a wrk Lua script written into `scriptDir`; the blobs
 * are pushed (untimed) first, their content differs per registry name so neither sees the other's.
 */
export async function measureSmallBlobGets(target: Target, options: BenchOptions, scriptDir: string): Promise<WrkResult> {
  const paths: string[] = [];
  for (const size of SMALL_BLOB_SIZES) {
    const blob = Buffer.alloc(size, `${target.name} small blob ${size} `);
    const digest = digestOf(blob);
    await target.client.pushMonolithic(SMALL_BLOB_REPOSITORY, digest, size, blob);
    paths.push(`/v2/${SMALL_BLOB_REPOSITORY}/blobs/${digest}`);
  }
  const script = path.join(scriptDir, 'small-blobs.lua');
  await writeFile(script, cyclingScript(paths));
  return wrkWithoutFailures(target.name, `${target.server.url}${paths[0]}`, {}, options, script);
}

/** A wrk script whose requests go to `paths` in turn (each wrk thread keeps its own counter). */
function cyclingScript(paths: string[]): string {
  return [
    `local paths = { ${paths.map((p) => JSON.stringify(p)).join(', ')} }`,
    'local next = 0',
    'request = function()',
    '  next = next % #paths + 1',
    '  return wrk.format("GET", paths[next])',
    'end',
    '',
  ].join('\n');
}

export interface MemoryUse {
  idle: number;
  /** Peaks (bytes) while a blob of options.rssBlobBytes streams in, then out. */
  push: RssPeaks;
  pull: RssPeaks;
}

/** Server RSS sampled every 100 ms while a large blob is pushed monolithically and pulled back. */
export async function measureMemory(target: Target, options: BenchOptions, idle: number): Promise<MemoryUse> {
  const repository = 'bench/memory';
  const size = options.rssBlobBytes;
  const seed = 3000;
  const digest = await blobDigest(seed, size);
  const { pid } = target.server;
  const push = await sampleRss(pid, () => target.client.pushMonolithic(repository, digest, size, blobStream(seed, 0, size)));
  const pull = await sampleRss(pid, () => pullAndVerify(target, repository, digest, size));
  return { idle, push, pull };
}

/** options.manifests distinct image manifests (differing by an annotation) PUT by tag, options.concurrency in flight: manifests/s. */
export async function measureManifestPuts(target: Target, options: BenchOptions, run: number): Promise<number> {
  const image = await uploadImageBlobs(target.client, MANIFEST_REPOSITORY);
  const seconds = await timeSeconds(() =>
    inParallel(options.manifests, options.concurrency, (index) =>
      target.client.putManifest(
        MANIFEST_REPOSITORY,
        manifestTag(run, index),
        MediaType.ociManifest,
        image.manifest({ 'bench.manifest': manifestTag(run, index) }),
      ),
    ),
  );
  return options.manifests / seconds;
}

/** wrk GET of one manifest by tag (one that measureManifestPuts wrote). */
export async function measureManifestGets(target: Target, options: BenchOptions): Promise<WrkResult> {
  const url = `${target.server.url}/v2/${MANIFEST_REPOSITORY}/manifests/${manifestTag(0, 0)}`;
  const headers = { Accept: MediaType.ociManifest };
  await target.client.send('GET', url, 200, headers);
  return wrkWithoutFailures(target.name, url, headers, options);
}

/**
 * Seconds of untimed wrk before each timed one, so both servers are measured warm, as a registry in use is: Node
 * compiles its hot paths during the first thousands of requests (Berth's first timed run was 15-35% below its later
 * ones), a Go binary is compiled ahead.
 */
const WRK_WARM_UP_SECONDS = 1;

/** runWrk with --connections and --duration, after a warm-up; any failed request fails the measurement. */
async function wrkWithoutFailures(
  name: string,
  url: string,
  headers: Record<string, string>,
  options: BenchOptions,
  script?: string,
): Promise<WrkResult> {
  await runWrk(url, headers, options.connections, WRK_WARM_UP_SECONDS, script);
  const result = await runWrk(url, headers, options.connections, options.wrkSeconds, script);
  if (result.failures > 0) throw new Error(`${name}: wrk saw ${result.failures} failed requests`);
  return result;
}

function manifestTag(run: number, index: number): string {
  return `r${run}-m${index}`;
}

export interface TagPage {
  tags: number;
  /** Median time of GET tags/list?n=100&last=<middle tag>. */
  ms: number;
  /** Tags the server returned for n=100 (a server that ignores n returns them all). */
  returned: number;
  /** Median time of GET tags/list (no n), measured at options.tags tags only. */
  fullListMs?: number;
}

/** A repository grown step by step to larger tag counts (one manifest, many tags), timing its tag listing at each step. */
export class TagListingBench {
  private readonly repository = 'bench/tags';
  private manifest: Buffer | undefined;
  private created = 0;
  private creatingSeconds = 0;

  constructor(
    readonly target: Target,
    private readonly options: BenchOptions,
  ) {}

  get name(): string {
    return this.target.name;
  }

  /** Tag PUTs (same manifest, new tag) per second so far. */
  get createdPerSecond(): number {
    return this.created / this.creatingSeconds;
  }

  /** Adds tags up to `size` (options.concurrency PUTs in flight), then times the listing. */
  async measureAt(size: number): Promise<TagPage> {
    const { client } = this.target;
    this.manifest ??= (await uploadImageBlobs(client, this.repository)).manifest({});
    const manifest = this.manifest;
    const from = this.created;
    this.creatingSeconds += await timeSeconds(() =>
      inParallel(size - from, this.options.concurrency, (index) =>
        client.putManifest(this.repository, tagName(from + index), MediaType.ociManifest, manifest),
      ),
    );
    this.created = size;
    const page = await timeTagPage(client, this.repository, size);
    return size === this.options.tags ? { ...page, fullListMs: await timeFullTagList(client, this.repository, size) } : page;
  }

  /** wrk GETs of the middle page (n=100) of the repository at its current size. */
  async measurePageRate(): Promise<WrkResult> {
    const url = `${this.target.server.url}${pagePath(this.repository, this.created)}`;
    return wrkWithoutFailures(this.name, url, {}, this.options);
  }
}

function pagePath(repository: string, size: number): string {
  return `/v2/${repository}/tags/list?n=${PAGE_SIZE}&last=${tagName(Math.floor(size / 2))}`;
}

async function timeTagPage(client: RegistryClient, repository: string, size: number): Promise<TagPage> {
  const page = pagePath(repository, size);
  const returned = tagsIn(await client.send('GET', page, 200));
  const ms = await medianMs(200, () => client.send('GET', page, 200));
  return { tags: size, ms, returned };
}

async function timeFullTagList(client: RegistryClient, repository: string, size: number): Promise<number> {
  const list = `/v2/${repository}/tags/list`;
  const returned = tagsIn(await client.send('GET', list, 200));
  if (returned !== size) throw new Error(`tags/list returned ${returned} of ${size} tags`);
  return medianMs(20, () => client.send('GET', list, 200));
}

function tagsIn(response: { body: Buffer }): number {
  return (JSON.parse(response.body.toString('utf8')) as { tags: string[] }).tags.length;
}

function tagName(index: number): string {
  return `t${String(index).padStart(6, '0')}`;
}

/** Uploads a tiny config and layer; returns a builder for manifests referencing them. */
async function uploadImageBlobs(
  client: RegistryClient,
  repository: string,
): Promise<{ manifest(annotations: Record<string, string>): Buffer }> {
  const layer = Buffer.from('berth bench layer\n');
  const layerDigest = digestOf(layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = digestOf(config);
  await client.pushMonolithic(repository, layerDigest, layer.length, layer);
  await client.pushMonolithic(repository, configDigest, config.length, config);
  return {
    manifest: (annotations) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.length },
          layers: [{ mediaType: MediaType.ociLayer, digest: layerDigest, size: layer.length }],
          ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        }),
      ),
  };
}

async function pullAndVerify(target: Target, repository: string, digest: string, size: number): Promise<void> {
  const pulled = await target.client.pullBlob(repository, digest);
  if (pulled.bytes !== size || pulled.digest !== digest) {
    throw new Error(`pulled ${pulled.bytes} bytes with ${pulled.digest}, expected ${size} bytes with ${digest}`);
  }
  if (target.redirect !== undefined && pulled.redirected !== target.redirect) {
    throw new Error(
      `${target.name}: blob GET ${pulled.redirected ? 'redirected' : 'did not redirect'}, expected ${target.redirect ? 'a redirect' : 'none'}`,
    );
  }
}

async function inParallel(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function timeSeconds(work: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function throughput(bytes: number, work: () => Promise<unknown>): Promise<number> {
  return bytes / 1e6 / (await timeSeconds(work));
}

async function medianMs(repetitions: number, work: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i += 1) samples.push((await timeSeconds(work)) * 1000);
  return median(samples);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The nearest-rank percentile (`fraction` 0.9 for p90): a value that was measured, never an interpolation. */
export function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)] ?? Number.NaN;
}

/**
 * Runs `measure` `rounds` times on every subject, alternating which goes first, so that both registries see the
 * same machine state (page cache, writeback, other load) on average. Returns the samples per subject.
 */
export async function alternate<S extends { name: string }, R>(
  title: string,
  subjects: S[],
  rounds: number,
  measure: (subject: S, round: number) => Promise<R>,
): Promise<R[][]> {
  const samples = subjects.map((): R[] => []);
  for (let round = 0; round < rounds; round += 1) {
    const order = subjects.map((_, i) => (round % 2 === 0 ? i : subjects.length - 1 - i));
    for (const i of order) {
      const subject = subjects[i]!;
      process.stderr.write(`[${subject.name}] ${title}${rounds > 1 ? ` (run ${round + 1}/${rounds})` : ''} ... `);
      const started = Date.now();
      const sample = await measure(subject, round);
      samples[i]!.push(sample);
      const shown = JSON.stringify(sample, (_key, value: unknown) => (typeof value === 'number' ? Number(value.toPrecision(4)) : value));
      process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)} s ${shown}\n`);
    }
  }
  return samples;
}

/** The per-field median of samples of a record of numbers. */
export function medianOf<T extends object>(samples: T[]): T {
  const first = samples[0]!;
  return Object.fromEntries(Object.keys(first).map((key) => [key, median(samples.map((sample) => sample[key as keyof T] as number))])) as T;
}
