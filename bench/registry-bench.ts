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
  measureSmallBlobGets,
  median,
  medianOf,
  TagListingBench,
  type Target,
} from './measurements.js';
import { DockerImageBench } from './docker-image-bench.js';
import { parseOptions } from './options.js';
import { reportBench, startBenchSession } from './session.js';
import { rssBytes } from './process-stats.js';
import { RegistryClient } from './registry-client.js';
import { buildRows, formatBlobRuns, formatTable, type DockerRates, type TargetResults } from './report.js';
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
  const smallGets = await alternate('small blob GET rate (wrk)', targets, options.runs, (t) => measureSmallBlobGets(t, options, workDir));
  const pages = targets.map((): TargetResults['tagPages'] => []);
  let pageRates: TargetResults['tagPageGets'][][] = [];
  for (const size of tagSizes) {
    const atSize = await alternate(`tag listing at ${size} tags`, tagBenches, 1, (bench) => bench.measureAt(size));
    atSize.forEach(([page], i) => pages[i]!.push(page!));
    if (size === options.tags)
      pageRates = await alternate(`tag page rate at ${size} tags (wrk)`, tagBenches, 1, (bench) => bench.measurePageRate());
  }
  const docker = await measureDocker(targets);

  return targets.map((_, i) => ({
    blobs: medianOf(blobs[i]!),
    blobRuns: blobs[i]!,
    memory: memory[i]![0]!,
    manifestPutsPerSecond: median(puts[i]!),
    manifestGets: medianOf(gets[i]!),
    smallBlobGets: medianOf(smallGets[i]!),
    tagPageGets: pageRates[i]![0]!,
    docker: docker[i],
    tagsCreatedPerSecond: tagBenches[i]!.createdPerSecond,
    tagPages: pages[i]!,
  }));
}

/** docker push of the image to each registry, then docker pull from each (options.runs times, alternating). */
async function measureDocker(targets: Target[]): Promise<Array<DockerRates | undefined>> {
  if (options.imageBytes === 0) return targets.map(() => undefined);
  const layers = 5;
  const image = await DockerImageBench.start(session, layers, Math.round(options.imageBytes / layers));
  const pushes = await alternate('docker push, 5 layers', targets, 1, (t) => image.push(t));
  const pulls = await alternate('docker pull, 5 layers', targets, options.runs, (t) => image.pull(t));
  return targets.map((_, i) => ({ push: pushes[i]![0]!, pull: median(pulls[i]!) }));
}

await reportBench('berth-bench', session, options, async () => {
  const [berth, distribution] = await run();
  const runs = formatBlobRuns([{ label: '', berth: berth!.blobRuns, reference: distribution!.blobRuns }]);
  return `${formatTable(buildRows(berth!, distribution!, options))}\n\n${runs}`;
});
