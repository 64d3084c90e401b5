#!/usr/bin/env node
/**
 * Push-triggered rollouts: from the end of a push to the tracked tag to the first replica serving the new
 * image on its node, and to every replica serving it (3 replicas on 3 hosts, a small busybox image, start-first
 * on a published port), with a client loop counting failed requests meanwhile; then the time from the push of
 * an image whose health check fails to the service being reverted and healthy again. Real parts: the
 * deployment tests' cluster (a registry and three agents, each in a network namespace of its own). Every run
 * is printed. What the issue compares to does not roll out on a push: Watchtower notices one by polling (every
 * 24 h by default), podman auto-update by a daily timer, Swarm and Kubernetes only when told; their
 * detection delay is their polling interval, and the last column is Watchtower's default over Berth's time.
 * Not a test: CI does not run it. Needs root.
 *
 *   node dist/bench/deploy-bench.js [--runs 3]
 */
import { parseArgs } from 'node:util';
import { clientLoop, replicas, servedBy, watchService } from '../test/helpers/deploy-checks.js';
import { DeployCluster, fastDeployEnv } from '../test/helpers/deploy-cluster.js';
import { alignColumns, formatNumber } from './report.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
const WATCHTOWER_POLL_SECONDS = 24 * 3600;
const SAMPLE_MS = 50;
const DEADLINE_MS = 120_000;

const cluster = await DeployCluster.start(
  ['b1', 'b2', 'b3'].map((name) => ({ name, labels: {} })),
  fastDeployEnv(30),
);
try {
  const repository = `bench/web-${Date.now()}`;
  await cluster.pushWebImage(repository, 'main', 'v0');
  const compose = {
    services: {
      web: {
        image: `${repository}:main`,
        ports: ['8080:80'],
        stop_grace_period: '1s',
        deploy: { replicas: 3, update_config: { monitor: '1s' } },
        'x-berth': { track: 'main', healthy_deadline: '60s' },
      },
    },
  };
  const deployed = await cluster.admin('POST', 'stacks/bench', { compose });
  if (deployed.status !== 200) throw new Error(`deploy: ${JSON.stringify(deployed.body)}`);
  const addresses = cluster.nodes.map((node) => cluster.addressOf(node));
  await servingEverywhere(addresses, 'v0', Date.now());

  const rows: string[][] = [];
  for (let index = 1; index <= runs; index++) {
    const body = `v${index}`;
    const before = (await cluster.admin('GET', 'stacks/bench/services/web')).body.rollout.revision as number;
    const load = clientLoop(addresses);
    await cluster.pushWebImage(repository, 'main', body);
    const pushed = Date.now();
    const { first, all } = await servingEverywhere(addresses, body, pushed);
    const settled = await watchService(
      cluster,
      'bench/web',
      (service) => service.rollout?.status === 'succeeded' && service.rollout.revision > before,
    );
    const requests = await load.stop();
    const reverted = await revertSeconds(repository, index);
    rows.push([
      String(index),
      formatNumber(first),
      formatNumber(all),
      formatNumber((settled.at(-1)!.at - pushed) / 1000),
      `${requests.failures.length}/${requests.ok + requests.failures.length}`,
      formatNumber(reverted),
      formatNumber(WATCHTOWER_POLL_SECONDS / all),
    ]);
    console.error(`run ${index}: first ${formatNumber(first)} s, all ${formatNumber(all)} s, revert ${formatNumber(reverted)} s`);
  }
  console.log('\npush to the tracked tag -> replicas serving the new image (3 replicas on 3 hosts), per run');
  console.log(
    alignColumns(
      ['run', 'first s', 'all s', 'succeeded s', 'failed requests', 'bad push -> reverted s', 'Watchtower poll / all'],
      rows,
      (column) => column > 0,
    ),
  );
} catch (error) {
  console.error(cluster.logs());
  throw error;
} finally {
  await cluster.destroy();
}

/** Seconds from `since` to the first address answering `body`, and to all of them answering it. */
async function servingEverywhere(addresses: string[], body: string, since: number): Promise<{ first: number; all: number }> {
  const serving = new Set<string>();
  let first: number | undefined;
  const deadline = since + DEADLINE_MS;
  while (Date.now() < deadline) {
    for (const address of addresses) {
      if (serving.has(address)) continue;
      const answer = await servedBy(address, 8080).catch(() => '');
      if (answer !== `200 ${body}`) continue;
      serving.add(address);
      first ??= (Date.now() - since) / 1000;
    }
    if (serving.size === addresses.length) return { first: first!, all: (Date.now() - since) / 1000 };
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
  }
  throw new Error(`${body} not served everywhere within ${DEADLINE_MS} ms (${[...serving].join(', ')} did)`);
}

/** A push whose health check fails: seconds until the service is reverted and every replica healthy on the good revision. */
async function revertSeconds(repository: string, index: number): Promise<number> {
  await cluster.pushWebImage(repository, 'main', `bad ${index}`, 'unhealthy');
  const pushed = Date.now();
  const samples = await watchService(
    cluster,
    'bench/web',
    (service) => service.rollout?.status === 'reverted' && replicas(service).every((replica) => replica.health === 'healthy'),
  );
  return (samples.at(-1)!.at - pushed) / 1000;
}
