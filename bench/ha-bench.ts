/**
 * High-availability benchmark (not a test). One registry on Redis under Sentinel (a primary, two replicas,
 * three sentinels, real processes on 127.0.0.1), filesystem storage:
 * - manifest PUT and GET rates with redis.minReplicasAcked 0 and 1 (the ratio is what durable
 *   acknowledgement costs), each run in turn, --runs times;
 * - the failover pause: pushes and pulls in a loop while the primary is SIGKILLed, and the time from its
 *   death to the first push and the first pull that started after it and succeeded.
 *   npx tsc -p . && node dist/bench/ha-bench.js [--runs 3] [--seconds 3] [--concurrency 8]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobOf, imageManifest, pushBlob, pushImage, putManifest, type Blob } from '../test/helpers/oci-content.js';
import { SentinelRedis } from '../test/helpers/redis-sentinel.js';
import { RegistryProcess } from '../test/helpers/registry-process.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '8' },
  },
});
const runs = Number(values.runs);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const REPOSITORY = 'bench/ha';

async function startRegistry(redis: SentinelRedis, minReplicasAcked: number): Promise<RegistryProcess> {
  return RegistryProcess.start({
    env: redis.registryEnv({ minReplicasAcked, ackTimeoutMs: 2_000 }),
    startTimeoutMs: 60_000,
  });
}

/** Runs `operation` from `concurrency` workers for `seconds`; operations per second. */
async function rate(operation: (index: number) => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let next = 0;
  const startedAt = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        if (!(await operation(next++))) throw new Error('an operation failed');
        done++;
      }
    }),
  );
  return done / ((Date.now() - startedAt) / 1000);
}

/** Manifest PUTs of distinct manifests (the same blobs, another annotation each) and GETs of one by tag. */
async function manifestRates(registry: RegistryProcess): Promise<{ put: number; get: number }> {
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
  const layer: Blob = blobOf(randomBytes(256));
  for (const blob of [config, layer]) await pushBlob(registry.url, REPOSITORY, blob);
  const salt = randomBytes(4).toString('hex');
  const put = await rate(async (index) => {
    const manifest = imageManifest({ config, layers: [layer], annotations: { n: `${salt}-${index}` } });
    const response = await putManifest(registry.url, REPOSITORY, `t${index % 50}`, manifest);
    await response.arrayBuffer();
    return response.status === 201;
  });
  const get = await rate(async () => {
    const response = await fetch(`${registry.url}/v2/${REPOSITORY}/manifests/t0`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    await response.arrayBuffer();
    return response.status === 200;
  });
  return { put, get };
}

interface Pause {
  push: number;
  pull: number;
  promotion: number;
}

/** Pushes and pulls in a loop through a SIGKILL of the primary; ms from the kill to the first of each started after it that succeeded. */
async function failoverPause(): Promise<Pause> {
  const redis = await SentinelRedis.start(2);
  const registry = await startRegistry(redis, 1).catch(async (error: unknown) => {
    await redis.stop();
    throw error;
  });
  try {
    const pulled = await pushImage(registry.url, REPOSITORY, { tag: 'pulled' });
    let killedAt = Number.POSITIVE_INFINITY;
    const firstSuccessAfterKill = async (operation: () => Promise<boolean>): Promise<number> => {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const startedAt = Date.now();
        const ok = await operation().catch(() => false);
        if (ok && startedAt > killedAt) return Date.now() - killedAt;
        if (!ok) await sleep(20);
      }
      throw new Error('no success within 60 s of the kill');
    };
    const pushes = firstSuccessAfterKill(() => pushImage(registry.url, REPOSITORY, { tag: 'pushed' }).then(() => true));
    const pulls = firstSuccessAfterKill(async () => {
      const response = await fetch(`${registry.url}/v2/${REPOSITORY}/manifests/${pulled.digest}`);
      await response.arrayBuffer();
      return response.status === 200;
    });
    await sleep(1_000);
    killedAt = Date.now();
    await redis.killPrimary();
    await redis.waitForPromotion();
    const promotion = Date.now() - killedAt;
    return { push: await pushes, pull: await pulls, promotion };
  } finally {
    await registry.destroy();
    await redis.stop();
  }
}

async function main(): Promise<void> {
  const redis = await SentinelRedis.start(2);
  const rows: string[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      const measured: Record<number, { put: number; get: number }> = {};
      for (const acked of [0, 1]) {
        const registry = await startRegistry(redis, acked);
        try {
          measured[acked] = await manifestRates(registry);
        } finally {
          await registry.destroy();
        }
        process.stderr.write(
          `run ${run} minReplicasAcked ${acked}: PUT ${measured[acked]!.put.toFixed(0)}/s GET ${measured[acked]!.get.toFixed(0)}/s\n`,
        );
      }
      const [plain, durable] = [measured[0]!, measured[1]!];
      rows.push(
        `| ${run} | ${plain.put.toFixed(0)} | ${durable.put.toFixed(0)} | ${(durable.put / plain.put).toFixed(2)} | ` +
          `${plain.get.toFixed(0)} | ${durable.get.toFixed(0)} | ${(durable.get / plain.get).toFixed(2)} |`,
      );
    }
  } finally {
    await redis.stop();
  }
  process.stdout.write(
    `manifest rates (${concurrency} in flight, ${seconds} s each), ops/s\n` +
      '| run | PUT acked 0 | PUT acked 1 | ratio | GET acked 0 | GET acked 1 | ratio |\n| --- | --- | --- | --- | --- | --- | --- |\n' +
      `${rows.join('\n')}\n\n`,
  );
  const pauses: string[] = [];
  for (let run = 1; run <= runs; run++) {
    const pause = await failoverPause();
    process.stderr.write(`failover ${run}: ${JSON.stringify(pause)}\n`);
    pauses.push(`| ${run} | ${pause.promotion} | ${pause.push} | ${pause.pull} |`);
  }
  process.stdout.write(
    'failover pause (ms after SIGKILL of the primary; minReplicasAcked 1)\n' +
      '| run | sentinel promotion | first push | first pull |\n| --- | --- | --- | --- |\n' +
      `${pauses.join('\n')}\n`,
  );
}

await main();
