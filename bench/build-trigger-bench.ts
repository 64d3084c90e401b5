#!/usr/bin/env node
/**
 * Automated builds: the time from a signed GitHub push webhook's POST to the build's image manifest in the
 * registry, for a small Dockerfile, cold (a commit whose RUN step no agent has run), warm (the same commit
 * again: every step cached, on the agent that built it or through the project's cache repository) and next (a
 * new commit changing no file the Dockerfile reads: fetched, every step cached), where a warm and a next build's
 * time goes (queue wait, git fetch, push, the rest), builds per minute with the two agents (distinct
 * branches pushed at once), and the webhook endpoint's own latency. Real parts: the test build farm (git
 * http-backend, a registry with auth, two build-worker agents). Every run is printed; the target is a cached
 * build visible within 3 s. Not a test: CI does not run it. Needs root.
 *
 *   node dist/bench/build-trigger-bench.js [--runs 3] [--pings 50] [--burst 6] [--steps]
 *
 * --steps prints every step of each build (stderr).
 */
import { parseArgs } from 'node:util';
import { BuildFarm, sourceDockerfile, WEBHOOK_SECRET, type BuildView } from '../test/helpers/build-farm.js';
import type { GitWorkTree } from '../test/helpers/git-http-server.js';
import { githubHook, githubPushPayload, postHook } from '../test/helpers/forge-hooks.js';
import { alignColumns, formatNumber } from './report.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    pings: { type: 'string', default: '50' },
    burst: { type: 'string', default: '6' },
    steps: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const pings = Number(values.pings);
const burst = Number(values.burst);
const TARGET_WARM_SECONDS = 3;
const TIMED_COLUMNS = ['cached', 'on', 's', 'queue', 'fetch', 'push', 'rest'];

/** A warm or next build's columns: steps cached, agent, seconds, then its queue wait, fetch, push and the rest. */
function timedColumns(timed: Timed): string[] {
  const rest = timed.seconds - timed.phases.reduce((total, phase) => total + phase, 0);
  return [timed.cached, timed.agent, formatNumber(timed.seconds), ...[...timed.phases, rest].map(formatNumber)];
}

const farm = await BuildFarm.start();
try {
  const work = await farm.project('bench', [{ sourceType: 'branch', source: '/^(.*)$/', tag: '{\\1}' }], {
    cacheRepository: 'team/bench-cache',
  });
  const rows: string[][] = [];
  const throughput: string[][] = [];
  for (let index = 1; index <= runs; index++) {
    await work.write({
      Dockerfile: `FROM scratch\nCOPY rootfs/ /\nRUN echo run ${index} ${Date.now()} > /run-${index}\nCMD ["ls", "/"]\n`,
    });
    const commit = await work.commit(`bench run ${index}`, 1_700_000_000 + index);
    await work.push('main');
    const cold = await pushToManifest(commit);
    const warm = await pushToManifest(commit);
    await work.write({ 'README.md': `run ${index}\n` });
    const nextCommit = await work.commit(`bench run ${index}, README only`, 1_700_000_000 + index);
    await work.push('main');
    const next = await pushToManifest(nextCommit);
    rows.push([String(index), formatNumber(cold.hookMs), formatNumber(cold.seconds), ...timedColumns(warm), ...timedColumns(next)]);
    throughput.push([String(index), formatNumber(await buildsPerMinute(work, index))]);
  }
  const latencies = await endpointLatencies();
  console.log('\nwebhook POST -> manifest in the registry (seconds), per run');
  console.log(
    alignColumns(
      ['run', 'cold POST ms', 'cold s', ...['warm', 'next'].flatMap((name) => TIMED_COLUMNS.map((column) => `${name} ${column}`))],
      rows,
      (column) => column > 0 && (column < 3 || (column - 3) % TIMED_COLUMNS.length > 1),
    ),
  );
  console.log(`\n${burst} branches pushed at once, two agents: builds per minute, per run`);
  console.log(alignColumns(['run', 'builds/min'], throughput, (column) => column > 0));
  console.log(`\nwarm target: visible within ${TARGET_WARM_SECONDS} s`);
  console.log(
    `webhook endpoint, ${pings} signed pings: median ${formatNumber(percentile(latencies, 0.5))} ms, p95 ${formatNumber(percentile(latencies, 0.95))} ms`,
  );
} finally {
  await farm.stop();
}

interface Timed {
  hookMs: number;
  seconds: number;
  cached: string;
  agent: string;
  /** Seconds in the queue, fetching the commit, pushing the image. */
  phases: number[];
}

/** Posts a push of the commit and waits for its build to succeed; the POST's own time, the whole time and its parts. */
async function pushToManifest(commit: string, branch = 'main'): Promise<Timed> {
  const started = performance.now();
  const answer = await postHook(
    farm.registry.url,
    'bench',
    githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: `refs/heads/${branch}`, commit })),
  );
  const hookMs = performance.now() - started;
  const [id] = answer.body.builds as string[];
  const build = await succeeded(id!);
  // The worker reports success only after the manifest PUT under every tag was answered.
  const seconds = (performance.now() - started) / 1000;
  const builderSteps = build.steps.filter((step) => !step.name.startsWith('[source]') && !step.name.startsWith('[push]'));
  // The source phase is the fetch and, beside the registry's answer about the commit, the checkout.
  const phase = (prefix: string) =>
    build.steps.filter((step) => step.name.startsWith(prefix)).reduce((total, step) => total + step.seconds, 0);
  if (values.steps) {
    const steps = build.steps.map((step) => `  ${formatNumber(step.seconds)} s ${step.cached ? 'CACHED ' : ''}${step.name}`);
    const times = `claimed +${build.claimedAt! - build.createdAt} ms, finished +${build.finishedAt! - build.createdAt} ms`;
    process.stderr.write(
      `${commit.slice(0, 7)} on ${build.worker}: ${times}, seen at +${Math.round(performance.now() - started)} ms\n${steps.join('\n')}\n`,
    );
  }
  return {
    hookMs,
    seconds,
    cached: `${builderSteps.filter((step) => step.cached).length}/${builderSteps.length}`,
    agent: build.worker.split('@')[0] ?? '',
    phases: [((build.claimedAt ?? 0) - build.createdAt) / 1000, phase('[source]'), phase('[push]')],
  };
}

/** Distinct commits on `burst` branches pushed at once, built by the two agents: builds finished per minute. */
async function buildsPerMinute(work: GitWorkTree, run: number): Promise<number> {
  const commits: Array<{ branch: string; commit: string }> = [];
  for (let index = 1; index <= burst; index++) {
    await work.write({ Dockerfile: sourceDockerfile(`RUN echo burst ${run}.${index} ${Date.now()} > /burst`) });
    const branch = `burst-${run}-${index}`;
    commits.push({ branch, commit: await work.commit(`burst ${run}.${index}`, 1_700_001_000 + run * 100 + index) });
    await work.push(`HEAD:${branch}`);
  }
  const started = performance.now();
  await Promise.all(commits.map(({ branch, commit }) => pushToManifest(commit, branch)));
  return (burst * 60_000) / (performance.now() - started);
}

async function succeeded(id: string): Promise<BuildView> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const build = await farm.build(id);
    if (build.state === 'succeeded') return build;
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
