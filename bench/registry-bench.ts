#!/usr/bin/env node
/**
 * Side-by-side benchmark of Berth and CNCF Distribution (Debian's docker-registry), both on filesystem storage
 * on this machine. See bench/README.md. Not a test: it is not run in CI.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import {
  measureBlobThroughput,
  measureManifestGets,
  measureManifestPuts,
  measureMemory,
  median,
  TagListingBench,
  type Target,
} from './measurements.js';
import { parseOptions } from './options.js';
import { rssBytes } from './process-stats.js';
import { RegistryClient } from './registry-client.js';
import { buildRows, formatTable, type TargetResults } from './report.js';
import { startBerth, startDistribution, type ServerProcess } from './servers.js';

const options = parseOptions(process.argv.slice(2));
const workDir = await mkdtemp(path.join(tmpdir(), 'berth-bench-'));
const servers: ServerProcess[] = [];
const clients: RegistryClient[] = [];

let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.stop()));
    await rm(workDir, { recursive: true, force: true });
  })());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}
// E.g. EPIPE on stdout when piped into `head`: still stop the servers and remove the temp directory.
process.on('uncaughtException', () => void cleanup().finally(() => process.exit(1)));

/**
 * Runs `measure` `rounds` times on every subject, alternating which goes first, so that both registries see the
 * same machine state (page cache, writeback, other load) on average. Returns the samples per subject.
 */
async function alternate<S extends { name: string }, R>(title: string, subjects: S[], rounds: number, measure: (subject: S, round: number) => Promise<R>): Promise<R[][]> {
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
function medianOf<T extends object>(samples: T[]): T {
  const first = samples[0]!;
  return Object.fromEntries(Object.keys(first).map((key) => [key, median(samples.map((sample) => sample[key as keyof T] as number))])) as T;
}

async function run(): Promise<TargetResults[]> {
  servers.push(await startBerth(workDir), await startDistribution(workDir));
  const targets: Target[] = servers.map((server) => {
    const client = new RegistryClient(server.url);
    clients.push(client);
    return { name: server.name, server, client };
  });
  const idle = new Map(targets.map((target) => [target, rssBytes(target.server.pid)]));
  const tagBenches = targets.map((target) => new TagListingBench(target, options));
  const tagSizes = [...new Set([Math.round(options.tags / 10), options.tags, options.tags * 5])];

  const blobs = await alternate('blob push/pull throughput', targets, options.runs, (t, round) => measureBlobThroughput(t, options, round));
  const memory = await alternate('RSS while a blob streams in and out', targets, 1, (t) => measureMemory(t, options, idle.get(t) ?? 0));
  const puts = await alternate('manifest PUT rate', targets, options.runs, (t, round) => measureManifestPuts(t, options, round));
  const gets = await alternate('manifest GET rate (wrk)', targets, options.runs, (t) => measureManifestGets(t, options));
  const pages = targets.map((): TargetResults['tagPages'] => []);
  for (const size of tagSizes) {
    const atSize = await alternate(`tag listing at ${size} tags`, tagBenches, 1, (bench) => bench.measureAt(size));
    atSize.forEach(([page], i) => pages[i]!.push(page!));
  }

  return targets.map((_, i) => ({
    blobs: medianOf(blobs[i]!),
    memory: memory[i]![0]!,
    manifestPutsPerSecond: median(puts[i]!),
    manifestGets: medianOf(gets[i]!),
    tagsCreatedPerSecond: tagBenches[i]!.createdPerSecond,
    tagPages: pages[i]!,
  }));
}

const loadAverage = () => loadavg().map((value) => value.toFixed(2)).join(' ');
process.stderr.write(`berth-bench: ${availableParallelism()} CPUs, load average ${loadAverage()}, options ${JSON.stringify(options)}\n`);
try {
  const [berth, distribution] = await run();
  process.stdout.write(`\n${formatTable(buildRows(berth!, distribution!, options))}\n`);
  process.stdout.write(`(load average at the end: ${loadAverage()}; other work on this machine skews every figure)\n`);
} catch (error) {
  process.stderr.write(`\nbenchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  for (const server of servers) process.stderr.write(`\n--- last lines of the ${server.name} log ---\n${server.logTail()}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
