/**
 * Garbage collection benchmark (not a test): seeds a registry's Redis with 200,000 blob records and 50,000
 * manifests (half the blobs referenced, half garbage, every blob linked to one of 500 repositories, most
 * links unreferenced; no bytes on disk: the store's deletes of missing files are what the sweep pays for
 * them). Then it runs `berth gc` (--in-process: POST /admin/v1/gc, the collector inside the registry)
 * back to back for --duration seconds while wrk GETs a manifest, and reports the first run's wall time,
 * the collector's peak RSS, and the manifest GET rate and p99 without and with collections running.
 *   npx tsc -p . && node dist/bench/gc-bench.js [--blobs 200000] [--manifests 50000] [--duration 30] [--in-process]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { silentLogger } from '../platform/logger.js';
import { EmbeddedRedis } from '../server/redis/embedded-redis.js';
import { sampleRss } from './process-stats.js';
import { startBerth } from './servers.js';
import { runWrk, type WrkResult } from './wrk.js';

const PREFIX = 'berth:';
const REPOSITORIES = 500;
const PIPELINE = 5_000;
const MiB = 1024 * 1024;

const BERTH_CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));
const { values } = parseArgs({
  options: {
    blobs: { type: 'string', default: '200000' },
    manifests: { type: 'string', default: '50000' },
    duration: { type: 'string', default: '30' },
    'in-process': { type: 'boolean', default: false },
  },
});
const inProcess = values['in-process'];
const blobCount = Number(values.blobs);
const manifestCount = Number(values.manifests);
const seconds = Number(values.duration);

interface GcReport {
  durationMs: number;
  blobsDeleted: number;
  bytesDeleted: number;
  linksDeleted: number;
}

const blobDigest = (index: number) => digestOf(`blob ${index}`);

/** Manifest i names blobs 2i and 2i+1 (config and layer), so blobs from 2·manifests on are garbage. */
async function seed(redis: Redis): Promise<void> {
  const old = String(Date.now() - 2 * 3600_000);
  for (let start = 0; start < blobCount; start += PIPELINE) {
    const pipeline = redis.pipeline();
    for (let index = start; index < Math.min(start + PIPELINE, blobCount); index++) {
      const digest = blobDigest(index);
      pipeline.hset(`${PREFIX}b:${digest}`, 'size', 1024, 'createdAt', old, 'touchedAt', old);
      pipeline.sadd(`${PREFIX}r:bench/r${index % REPOSITORIES}:b`, digest);
    }
    await pipeline.exec();
  }
  for (let start = 0; start < manifestCount; start += PIPELINE) {
    const pipeline = redis.pipeline();
    for (let index = start; index < Math.min(start + PIPELINE, manifestCount); index++)
      seedManifest(pipeline, `bench/r${index % REPOSITORIES}`, index, old);
    await pipeline.exec();
  }
  // The manifest wrk GETs: a real document under a tag.
  const pipeline = redis.pipeline();
  seedManifest(pipeline, 'bench/get', 0, old, 'latest');
  await pipeline.exec();
}

function seedManifest(pipeline: ReturnType<Redis['pipeline']>, repository: string, index: number, old: string, tag = `t${index}`): void {
  const blobs = [blobDigest(2 * index), blobDigest(2 * index + 1)];
  const content = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: blobs[0], size: 1024 },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: blobs[1], size: 1024 }],
  });
  const digest = digestOf(content);
  const repo = `${PREFIX}r:${repository}`;
  pipeline.hset(
    `${PREFIX}m:${digest}`,
    'mediaType',
    MediaType.ociManifest,
    'content',
    content,
    'subject',
    '',
    'descriptor',
    '{}',
    'blobs',
    JSON.stringify(blobs),
    'manifests',
    '[]',
    'touchedAt',
    old,
  );
  pipeline.sadd(`${repo}:m`, digest);
  pipeline.sadd(`${repo}:b`, ...blobs);
  pipeline.zadd(`${PREFIX}repos`, 0, repository);
  pipeline.hset(`${repo}:tagmap`, tag, digest);
  pipeline.zadd(`${repo}:tags`, 0, tag);
  pipeline.sadd(`${repo}:mtags:${digest}`, tag);
}

async function collectInRegistry(url: string): Promise<GcReport> {
  const response = await fetch(`${url}/admin/v1/gc`, { method: 'POST' });
  if (response.status !== 200) throw new Error(`gc: ${response.status} ${await response.text()}`);
  return (await response.json()) as GcReport;
}

/** `berth gc` as its own process; its RSS is sampled while it runs. */
async function collectWithCli(dataDir: string, peak: { rss: number }): Promise<GcReport> {
  const child = spawn(process.execPath, [BERTH_CLI, 'gc', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const rss = await sampleRss(child.pid ?? 0, async () => void (await exited));
  peak.rss = Math.max(peak.rss, rss.process);
  if ((await exited) !== 0) throw new Error(`berth gc failed: ${stdout}`);
  return JSON.parse(stdout) as GcReport;
}

function row(name: string, value: string, target = ''): string {
  return `| ${name} | ${value} | ${target} |`;
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(path.join(tmpdir(), 'berth-gc-bench-'));
  // The bench's environment is the registry's: collections on demand, no grace, so the garbage goes at once.
  Object.assign(process.env, { BERTH_GC__ADMIN_API: 'true', BERTH_GC__GRACE_SECONDS: '0' });
  const berth = await startBerth(workDir);
  const { socketPath } = new EmbeddedRedis(path.join(workDir, 'berth'), 'redis-server', silentLogger());
  const redis = new Redis({ path: socketPath });
  try {
    let started = Date.now();
    await seed(redis);
    process.stderr.write(`seeded ${blobCount} blobs and ${manifestCount} manifests in ${Date.now() - started} ms\n`);
    const manifestUrl = `${berth.url}/v2/bench/get/manifests/latest`;
    const headers = { Accept: MediaType.ociManifest };
    const baseline = await runWrk(manifestUrl, headers, 32, seconds);
    process.stderr.write(`baseline: ${baseline.requestsPerSecond} req/s\n`);

    let first: GcReport | undefined;
    let runs = 0;
    let during: WrkResult | undefined;
    const collector = { rss: 0 };
    const collect = () => (inProcess ? collectInRegistry(berth.url) : collectWithCli(path.join(workDir, 'berth'), collector));
    const rss = await sampleRss(berth.pid, async () => {
      const load = runWrk(manifestUrl, headers, 32, seconds).then((result) => (during = result));
      const deadline = Date.now() + seconds * 1000;
      started = Date.now();
      // The first run deletes the garbage; the ones after it mark and sweep everything again, finding none.
      while (Date.now() < deadline) {
        const report = await collect();
        first ??= report;
        runs++;
      }
      await load;
    });
    if (!first || !during) throw new Error('no measurement');
    const ratio = during.requestsPerSecond / baseline.requestsPerSecond;
    console.log(`| figure | value | target |\n| --- | --- | --- |`);
    console.log(row('blobs / manifests seeded', `${blobCount} / ${manifestCount}`));
    console.log(
      row(
        'first run: mark + sweep wall time',
        `${(first.durationMs / 1000).toFixed(1)} s (${first.blobsDeleted} blobs, ${first.linksDeleted} links deleted)`,
        '< 60 s',
      ),
    );
    console.log(row('collector', inProcess ? 'in the registry (admin API)' : '`berth gc` process'));
    console.log(row('runs during the GC window', `${runs}`));
    if (!inProcess) console.log(row('collector process peak RSS', `${(collector.rss / MiB).toFixed(0)} MiB`, '< 300 MiB'));
    console.log(row('registry peak RSS (process)', `${(rss.process / MiB).toFixed(0)} MiB`, inProcess ? '< 300 MiB' : ''));
    console.log(row('registry + embedded Redis peak RSS', `${(rss.tree / MiB).toFixed(0)} MiB`));
    console.log(row('manifest GET without GC', `${baseline.requestsPerSecond.toFixed(0)} req/s, p99 ${baseline.p99Ms.toFixed(1)} ms`));
    console.log(row('manifest GET during GC', `${during.requestsPerSecond.toFixed(0)} req/s, p99 ${during.p99Ms.toFixed(1)} ms`));
    console.log(row('throughput during GC / without', `${(ratio * 100).toFixed(0)}%`, '>= 80%'));
    if (baseline.failures + during.failures > 0) console.log(`wrk failures: ${baseline.failures + during.failures}`);
  } finally {
    redis.disconnect();
    await berth.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
