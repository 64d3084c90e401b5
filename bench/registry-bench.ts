#!/usr/bin/env node
/**
 * Side-by-side benchmark of Berth and CNCF Distribution (Debian's docker-registry), both on filesystem storage
 * on this machine. See bench/README.md. Not a test: it is not run in CI.
 */
import {
  alternate,
  measureBlobThroughput,
  measureManifestGets,
  measureManifestPuts,
  measureMemory,
  median,
  medianOf,
  TagListingBench,
  type Target,
} from './measurements.js';
import { parseOptions } from './options.js';
import { reportBench, startBenchSession } from './session.js';
import { rssBytes } from './process-stats.js';
import { RegistryClient } from './registry-client.js';
import { buildRows, formatTable, type TargetResults } from './report.js';
import { startBerth, startDistribution } from './servers.js';

const options = parseOptions(process.argv.slice(2));
const session = await startBenchSession('berth-bench-');
const { workDir, servers, clients } = session;

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

await reportBench('berth-bench', session, options, async () => {
  const [berth, distribution] = await run();
  return formatTable(buildRows(berth!, distribution!, options));
});
