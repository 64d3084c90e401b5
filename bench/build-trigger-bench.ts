#!/usr/bin/env node
/**
 * Automated builds: the time from a signed GitHub push webhook's POST to the build's image manifest in the
 * registry, for a small Dockerfile, cold (a commit whose RUN step no agent has run) and warm (the same commit
 * again: every step cached on the agent that built it), and the webhook endpoint's own latency. Real parts:
 * the test build farm (git http-backend, a registry with auth, two build-worker agents). Every run is printed;
 * the target is a cached build visible within 3 s. Not a test: CI does not run it. Needs root.
 *
 *   node dist/bench/build-trigger-bench.js [--runs 3] [--pings 50]
 */
import { parseArgs } from 'node:util';
import { BuildFarm, sourceDockerfile, WEBHOOK_SECRET } from '../test/helpers/build-farm.js';
import { githubHook, githubPushPayload, postHook } from '../test/helpers/forge-hooks.js';
import { alignColumns, formatNumber } from './report.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, pings: { type: 'string', default: '50' } } });
const runs = Number(values.runs);
const pings = Number(values.pings);
const TARGET_WARM_SECONDS = 3;

const farm = await BuildFarm.start();
try {
  const work = await farm.project('bench', [{ sourceType: 'branch', source: 'main', tag: 'latest' }]);
  const rows: string[][] = [];
  for (let index = 1; index <= runs; index++) {
    await work.write({ Dockerfile: sourceDockerfile(`RUN echo run ${index} ${Date.now()} > /run-${index}`) });
    const commit = await work.commit(`bench run ${index}`, 1_700_000_000 + index);
    await work.push('main');
    const cold = await pushToManifest(commit);
    const warm = await pushToManifest(commit);
    rows.push([
      String(index),
      formatNumber(cold.hookMs),
      formatNumber(cold.seconds),
      formatNumber(warm.hookMs),
      formatNumber(warm.seconds),
      warm.cached,
    ]);
  }
  const latencies = await endpointLatencies();
  console.log('\nwebhook POST -> manifest in the registry (seconds), per run');
  console.log(
    alignColumns(
      ['run', 'cold POST ms', 'cold s', 'warm POST ms', 'warm s', 'warm steps cached'],
      rows,
      (column) => column > 0 && column < 5,
    ),
  );
  console.log(`\nwarm target: visible within ${TARGET_WARM_SECONDS} s`);
  console.log(
    `webhook endpoint, ${pings} signed pings: median ${formatNumber(percentile(latencies, 0.5))} ms, p95 ${formatNumber(percentile(latencies, 0.95))} ms`,
  );
} finally {
  await farm.stop();
}

/** Posts a push of the commit and waits for its build to succeed; the POST's own time and the whole time. */
async function pushToManifest(commit: string): Promise<{ hookMs: number; seconds: number; cached: string }> {
  const started = performance.now();
  const answer = await postHook(
    farm.registry.url,
    'bench',
    githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit })),
  );
  const hookMs = performance.now() - started;
  const [id] = answer.body.builds as string[];
  const deadline = Date.now() + 300_000;
  for (;;) {
    const build = await farm.build(id!);
    if (build.state === 'succeeded') {
      // The worker reports success only after the manifest PUT under every tag was answered.
      const seconds = (performance.now() - started) / 1000;
      return { hookMs, seconds, cached: `${build.steps.filter((step) => step.cached).length}/${build.steps.length}` };
    }
    if (build.state !== 'queued' && build.state !== 'running') throw new Error(`build ${id} ${build.state}: ${build.error}`);
    if (Date.now() > deadline) throw new Error(`build ${id} still ${build.state} after 300 s`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function endpointLatencies(): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < pings; index++) {
    const started = performance.now();
    await postHook(farm.registry.url, 'bench', githubHook(WEBHOOK_SECRET, 'ping', { zen: 'bench' }));
    times.push(performance.now() - started);
  }
  return times;
}

function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}
