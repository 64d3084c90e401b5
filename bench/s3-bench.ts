#!/usr/bin/env node
/**
 * Side-by-side benchmark of Berth and CNCF Distribution (Debian's docker-registry), both on S3 storage: one s3rver
 * (test/helpers/s3-server.ts, in its own process), each registry under its own prefix of its bucket. See
 * bench/README.md ("S3 benchmark"). Not a test: it is not run in CI.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  alternate,
  measureBlobThroughput,
  measureMemory,
  median,
  type BlobThroughput,
  type MemoryUse,
  type Target,
} from './measurements.js';
import { parseOptions } from './options.js';
import { reportBench, startBenchSession } from './session.js';
import { measureCpu, rssBytes } from './process-stats.js';
import { blobDigest, blobStream } from './blob-data.js';
import { curlDownload } from './curl.js';
import { RegistryClient } from './registry-client.js';
import { formatBlobRuns, formatBytes, formatTable, type Row } from './report.js';
import { ServerProcess, startBerth, startDistribution } from './servers.js';

const MiB = 1024 * 1024;
/** "Flat": RSS peak with a 4x larger blob at most this much above the peak with the smaller one. */
const RSS_GROWTH_LIMIT = 1.2;
const S3RVER_PROCESS = fileURLToPath(new URL('./s3rver-process.js', import.meta.url));

const options = parseOptions(process.argv.slice(2), {
  defaults: { blobBytes: 256 * MiB, chunkBytes: 10 * MiB, rssBlobBytes: 256 * MiB, runs: 3 },
  quick: { blobBytes: 32 * MiB, chunkBytes: 10 * MiB, rssBlobBytes: 64 * MiB, runs: 1 },
  usage: `usage: node dist/bench/s3-bench.js [options]
  --quick             small sizes for a fast run while developing
  --size-gib <n>      blob size for push/pull throughput (default 0.25)
  --chunk-mib <n>     chunk size of the chunked upload (default 10)
  --rss-gib <n>       larger blob pushed and pulled while RSS is sampled; the smaller is a quarter of it (default 0.25)
  --runs <n>          push/pull repetitions, median reported (default 3)`,
});
const session = await startBenchSession('berth-s3-bench-');
const { workDir, servers, clients } = session;

/** s3rver (bench/s3rver-process.ts over the test helper) in a child process; yields its BERTH_* env. */
async function startS3rver(): Promise<{ server: ServerProcess; env: Record<string, string> }> {
  let env: Record<string, string> = {};
  const server = await ServerProcess.launch(
    's3rver',
    process.execPath,
    [S3RVER_PROCESS],
    path.join(workDir, 's3rver.log'),
    async (log) => {
      const line = /^s3rver ready (.*)$/m.exec(log)?.[1];
      if (!line) return undefined;
      env = JSON.parse(line) as Record<string, string>;
      return env.BERTH_STORAGE__S3__ENDPOINT;
    },
    { TMPDIR: workDir },
  );
  return { server, env };
}

function distributionS3(env: Record<string, string>, rootDirectory: string, redirect: boolean): string[] {
  return [
    '  s3:',
    '    region: us-east-1',
    `    regionendpoint: ${env.BERTH_STORAGE__S3__ENDPOINT}`,
    `    bucket: ${env.BERTH_STORAGE__S3__BUCKET}`,
    `    accesskey: ${env.BERTH_STORAGE__S3__CREDENTIALS__ACCESS_KEY_ID}`,
    `    secretkey: ${env.BERTH_STORAGE__S3__CREDENTIALS__SECRET_ACCESS_KEY}`,
    '    secure: false',
    '    v4auth: true',
    `    chunksize: ${10 * MiB}`,
    // s3rver lacks UploadPartCopy; below this size Distribution moves blobs with CopyObject.
    '    multipartcopythresholdsize: 5368709120',
    `    rootdirectory: /${rootDirectory}`,
    ...(redirect ? [] : ['  redirect: {disable: true}']),
  ];
}

interface Results {
  /** CPU seconds of each proxy instance's first pull after it started (Berth, then Distribution). */
  firstPullCpu: number[];
  blobs: BlobThroughput[][];
  memory: { small: MemoryUse; large: MemoryUse }[];
}

async function run(): Promise<Results> {
  const s3 = await startS3rver();
  servers.push(s3.server);
  // Berth's part size set to Distribution's chunk size (10 MiB is also Berth's default).
  const berthEnv = (prefix: string, redirect: boolean) => ({
    ...s3.env,
    BERTH_STORAGE__S3__PREFIX: prefix,
    BERTH_STORAGE__S3__PART_SIZE: String(10 * MiB),
    BERTH_STORAGE__S3__REDIRECT__ENABLED: String(redirect),
  });
  // aws-sdk-go panics on an AWS_CA_BUNDLE set in this environment ("HTTPClient's transport unsupported type"); empty = unset.
  const distributionEnv = { AWS_CA_BUNDLE: '' };
  const starting = await Promise.allSettled([
    startBerth(workDir, { name: 'Berth redirect', env: berthEnv('berth-redirect', true) }),
    startBerth(workDir, { name: 'Berth proxy', env: berthEnv('berth-proxy', false) }),
    startDistribution(workDir, {
      name: 'Distribution redirect',
      env: distributionEnv,
      storage: distributionS3(s3.env, 'distribution-redirect', true),
    }),
    startDistribution(workDir, {
      name: 'Distribution proxy',
      env: distributionEnv,
      storage: distributionS3(s3.env, 'distribution-proxy', false),
    }),
  ]);
  // Every server that did start is stopped at the end, also when another failed to.
  const started = starting.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  servers.push(...started);
  const failed = starting.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  const targets: Target[] = started.map((server, i) => {
    const client = new RegistryClient(server.url);
    clients.push(client);
    return { name: server.name, server, client, redirect: i % 2 === 0 };
  });
  // RSS on the proxy instances, where the pull streams through the registry too; push is the same in both modes.
  const proxies = [targets[1]!, targets[3]!];
  const idle = new Map(proxies.map((target) => [target, rssBytes(target.server.pid)]));
  const firstPull = await alternate('first proxied pull after start (CPU, untimed)', proxies, 1, measureFirstPullCpu);
  const blobs = await alternate('blob push/pull throughput', targets, options.runs, (t, round) => measureBlobThroughput(t, options, round));
  const small = { ...options, rssBlobBytes: Math.round(options.rssBlobBytes / 4) };
  const memory = await alternate('RSS while a small, then a 4x larger blob streams in and out', proxies, 1, async (t) => ({
    small: await measureMemory(t, small, idle.get(t) ?? 0),
    large: await measureMemory(t, options, idle.get(t) ?? 0),
  }));
  return { firstPullCpu: firstPull.map((samples) => samples[0]!), blobs, memory: memory.map((samples) => samples[0]!) };
}

/**
 * CPU seconds of a proxied pull of a blob of options.blobBytes, the first since the registry started: it costs Berth
 * about twice a later pull (most likely Node running the path before it is optimized), so it is reported apart and
 * taken before the timed runs, which then measure a registry past its warm-up.
 */
async function measureFirstPullCpu(target: Target): Promise<number> {
  const repository = 'bench/first-pull';
  const seed = 3000;
  const digest = await blobDigest(seed, options.blobBytes);
  await target.client.pushMonolithic(repository, digest, options.blobBytes, blobStream(seed, 0, options.blobBytes));
  const pull = await measureCpu(target.server.pid, () =>
    curlDownload(`${target.server.url}/v2/${repository}/blobs/${digest}`, options.blobBytes),
  );
  return pull.cpuSeconds;
}

function buildRows({ firstPullCpu, blobs, memory }: Results): Row[] {
  const [berthRedirect, berthProxy, distRedirect, distProxy] = blobs as [
    BlobThroughput[],
    BlobThroughput[],
    BlobThroughput[],
    BlobThroughput[],
  ];
  const [berthMemory, distMemory] = memory as [Results['memory'][number], Results['memory'][number]];
  const size = formatBytes(options.blobBytes);
  const atLeast = (b: number, d: number) => ({ text: '>= 1x Distribution', met: b >= d });
  const row = (label: string, unit: string, berth: number, distribution: number, target?: Row['target']): Row => ({
    label,
    unit,
    berth,
    reference: distribution,
    ratio: true,
    target,
  });
  // Push does not depend on the redirect setting: the samples of both instances of a registry are pooled.
  const medians = (berth: BlobThroughput[], dist: BlobThroughput[], pick: (b: BlobThroughput) => number) => ({
    berth: median(berth.map(pick)),
    reference: median(dist.map(pick)),
  });
  const blobRow = (label: string, rate: { berth: number; reference: number }, cpu: Row['cpu']): Row => ({
    ...row(label, 'MB/s', rate.berth, rate.reference, atLeast(rate.berth, rate.reference)),
    cpu,
  });
  const push = (rate: (b: BlobThroughput) => number, cpu: (b: BlobThroughput) => number, label: string) => {
    const berth = [...berthRedirect, ...berthProxy];
    const dist = [...distRedirect, ...distProxy];
    return blobRow(label, medians(berth, dist, rate), medians(berth, dist, cpu));
  };
  const pull = (berth: BlobThroughput[], dist: BlobThroughput[], label: string) =>
    blobRow(
      label,
      medians(berth, dist, (b) => b.pull),
      medians(berth, dist, (b) => b.pullCpu),
    );
  const smallSize = formatBytes(Math.round(options.rssBlobBytes / 4));
  const largeSize = formatBytes(options.rssBlobBytes);
  const growth = (m: Results['memory'][number]) => m.large.push.process / m.small.push.process;
  return [
    push(
      (b) => b.pushMonolithic,
      (b) => b.pushMonolithicCpu,
      `push ${size} blob, monolithic`,
    ),
    push(
      (b) => b.pushChunked,
      (b) => b.pushChunkedCpu,
      `push ${size} blob, ${formatBytes(options.chunkBytes)} chunks`,
    ),
    pull(berthRedirect, distRedirect, `pull ${size} blob, redirect (307 to s3rver followed)`),
    pull(berthProxy, distProxy, `pull ${size} blob, proxied by the registry`),
    row(`CPU of the first proxied pull after start, ${size}`, 's', firstPullCpu[0]!, firstPullCpu[1]!),
    row('RSS idle after start', 'MiB', berthMemory.small.idle / MiB, distMemory.small.idle / MiB),
    row(`RSS peak, ${smallSize} blob streaming in`, 'MiB', berthMemory.small.push.process / MiB, distMemory.small.push.process / MiB),
    row(`RSS peak, ${largeSize} blob streaming in`, 'MiB', berthMemory.large.push.process / MiB, distMemory.large.push.process / MiB),
    {
      ...row(`RSS peak in, ${largeSize} / ${smallSize}`, 'x', growth(berthMemory), growth(distMemory)),
      ratio: false,
      target: { text: `Berth <= ${RSS_GROWTH_LIMIT}x (flat)`, met: growth(berthMemory) <= RSS_GROWTH_LIMIT },
    },
    row(`RSS peak, ${smallSize} blob streaming out`, 'MiB', berthMemory.small.pull.process / MiB, distMemory.small.pull.process / MiB),
    row(`RSS peak, ${largeSize} blob streaming out`, 'MiB', berthMemory.large.pull.process / MiB, distMemory.large.pull.process / MiB),
  ];
}

function blobRuns({ blobs }: Results): string {
  const [berthRedirect, berthProxy, distRedirect, distProxy] = blobs as [BlobThroughput[], ...BlobThroughput[][]];
  return formatBlobRuns([
    { label: 'redirect', berth: berthRedirect, reference: distRedirect! },
    { label: 'proxy', berth: berthProxy!, reference: distProxy! },
  ]);
}

await reportBench('s3-bench', session, options, async () => {
  const results = await run();
  return `${formatTable(buildRows(results))}\n\n${blobRuns(results)}`;
});
