#!/usr/bin/env node
/**
 * Controller and agent memory with many services: a stack of `--services` services (1 replica each, a small
 * busybox image, no health check, no published port) deployed on real agents (the deployment tests'
 * cluster: a registry and `--nodes` agents, each in a network namespace of its own), then left steady, then
 * removed with `stack rm`; the same cluster again for each run, so that what a run leaves behind shows in
 * the next. At each point: the registry's RSS (the controller runs in it) and its Redis's, each agent
 * daemon's RSS, its containers' shims' summed as RSS and as PSS (which counts the pages the shims share
 * once: the node binary, mapped by each), and the controller's pass time (its tick: one pass over every
 * service), from the registry's `berth_deploy_controller_pass_seconds` while steady. Every run is printed.
 * Not a test: CI does not run it. Needs root.
 *
 *   node dist/bench/deploy-memory-bench.js [--services 100] [--nodes 2] [--runs 2] [--steady 30]
 */
import { parseArgs } from 'node:util';
import { DeployCluster, type Json } from '../test/helpers/deploy-cluster.js';
import { descendantPids, pssBytes, rssBytes } from './process-stats.js';
import { alignColumns, formatNumber } from './report.js';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '100' },
    nodes: { type: 'string', default: '2' },
    runs: { type: 'string', default: '2' },
    steady: { type: 'string', default: '30' },
  },
});
const services = Number(values.services);
const runs = Number(values.runs);
const steadySeconds = Number(values.steady);
const CONVERGE_MS = 1_200_000;
const POLL_MS = 1000;
const MIB = 1024 * 1024;

interface Sample {
  registry: number;
  redis: number;
  /** Per agent: the daemon's own RSS. */
  agents: number[];
  /** Every agent's shims and what runs under them, summed. */
  containers: number;
  /** The same processes' proportional set sizes, summed: what they take together, shared pages counted once. */
  containersPss: number;
}

const names = Array.from({ length: Number(values.nodes) }, (_, index) => `m${index + 1}`);
const cluster = await DeployCluster.start(
  names.map((name) => ({ name, labels: {} })),
  { BERTH_DEPLOY__NODE_GRACE_SECONDS: '120' },
);
try {
  const repository = `bench/memory-${Date.now()}`;
  await cluster.pushWebImage(repository, 'main', 'memory');
  const service = { image: `${repository}:main`, stop_grace_period: '1s', healthcheck: { disable: true } };
  const compose = {
    services: Object.fromEntries(Array.from({ length: services }, (_, index) => [`s${String(index + 1).padStart(3, '0')}`, service])),
  };
  const rows: string[][] = [];
  const baseline = sample();
  rows.push(row('start', '-', baseline, null));
  for (let run = 1; run <= runs; run++) {
    const started = Date.now();
    const deployed = await cluster.admin('POST', 'stacks/mem', { compose });
    if (deployed.status !== 200) throw new Error(`deploy: ${JSON.stringify(deployed.body)}`);
    await until('every replica healthy', async () => {
      const answer = await cluster.admin('GET', 'stacks/mem');
      return answer.status === 200 && (answer.body.services as Json[]).every(healthy);
    });
    const converged = (Date.now() - started) / 1000;
    rows.push(row(`${run}: ${services} deployed`, formatNumber(converged), sample(), null));
    const before = await passes();
    await new Promise((resolve) => setTimeout(resolve, steadySeconds * 1000));
    const after = await passes();
    const pass = { ms: ((after.sum - before.sum) / Math.max(1, after.count - before.count)) * 1000, count: after.count - before.count };
    rows.push(row(`${run}: ${steadySeconds} s steady`, '-', sample(), pass));
    const removedAt = Date.now();
    const removed = await cluster.admin('DELETE', 'stacks/mem');
    if (removed.status !== 202) throw new Error(`stack rm: ${JSON.stringify(removed.body)}`);
    await until('every container removed', async () => (await Promise.all(names.map(containerCount))).every((count) => count === 0));
    rows.push(row(`${run}: removed`, formatNumber((Date.now() - removedAt) / 1000), sample(), null));
    console.error(`run ${run}: converged in ${formatNumber(converged)} s, pass ${formatNumber(pass.ms)} ms`);
  }
  console.log(`\n${services} services, 1 replica each, on ${names.length} agents (RSS and PSS in MiB; agents: each daemon's own)`);
  console.log(
    alignColumns(
      ['point', 'took s', 'registry', 'redis', 'agents', 'containers (shims)', 'containers PSS', 'controller pass ms', 'passes'],
      rows,
      (column) => column > 1,
    ),
  );
} catch (error) {
  console.error(cluster.logs());
  throw error;
} finally {
  await cluster.destroy();
}

function healthy(view: Json): boolean {
  const replicas = view.replicas as Array<{ health: string }>;
  return view.rollout?.status === 'succeeded' && replicas.length === 1 && replicas.every((replica) => replica.health === 'healthy');
}

function sample(): Sample {
  const registryPid = cluster.registry.child.pid!;
  const agentPids = names.map((name) => cluster.agent(name).pid!);
  const containerPids = agentPids.flatMap(descendantPids);
  return {
    registry: rssBytes(registryPid),
    redis: descendantPids(registryPid).reduce((sum, pid) => sum + rssBytes(pid), 0),
    agents: agentPids.map(rssBytes),
    containers: containerPids.reduce((sum, pid) => sum + rssBytes(pid), 0),
    containersPss: containerPids.reduce((sum, pid) => sum + pssBytes(pid), 0),
  };
}

function row(point: string, took: string, at: Sample, pass: { ms: number; count: number } | null): string[] {
  return [
    point,
    took,
    formatNumber(at.registry / MIB),
    formatNumber(at.redis / MIB),
    at.agents.map((bytes) => formatNumber(bytes / MIB)).join(' / '),
    formatNumber(at.containers / MIB),
    formatNumber(at.containersPss / MIB),
    pass ? formatNumber(pass.ms) : '-',
    pass ? String(pass.count) : '-',
  ];
}

/** The registry's controller pass histogram so far: total seconds and number of passes. */
async function passes(): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${cluster.registry.url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { sum: read('berth_deploy_controller_pass_seconds_sum'), count: read('berth_deploy_controller_pass_seconds_count') };
}

async function containerCount(name: string): Promise<number> {
  return (await cluster.agent(name).cli(['ps', '-a', '-q'])).stdout.split('\n').filter(Boolean).length;
}

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + CONVERGE_MS;
  while (Date.now() < deadline) {
    if (await done()) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`${what}: not within ${CONVERGE_MS} ms`);
}
