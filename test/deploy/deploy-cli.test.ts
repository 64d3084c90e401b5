import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { run } from '../helpers/exec.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { SimulatedNode, type SimulatedAssignment } from '../helpers/simulated-node.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

/** A registry and a scratch directory for the test, and `berth` run against that registry as a user runs it. */
async function deployCli(t: ExecutionContext, options: { env?: Record<string, string>; timeoutMs: number }) {
  const registry = await RegistryProcess.start({ env: { BERTH_DEPLOY__CONTROLLER_TICK_MS: '200' } });
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-deploy-cli-'));
  t.teardown(async () => {
    await registry.destroy();
    await rm(directory, { recursive: true, force: true });
  });
  const berth = (...args: string[]) =>
    run(process.execPath, [CLI, ...args, '--registry', registry.url], { allowFailure: true, ...options });
  return { registry, directory, berth };
}

test('berth node token, berth deploy --wait, rollout status and service history, as a user runs them', async (t) => {
  const { registry, directory, berth } = await deployCli(t, { env: { TAG: 'main' }, timeoutMs: 60_000 });
  const repository = uniqueRepo('shop');
  const good = await pushImage(registry.url, repository, { tag: 'main' });

  const issued = await berth('node', 'token');
  t.is(issued.code, 0, issued.stderr);
  const { token } = JSON.parse(issued.stdout) as { token: string };
  const nodes = await Promise.all(['n1', 'n2'].map((name) => SimulatedNode.join(registry.url, token, name)));
  for (const node of nodes) node.start();
  t.teardown(() => Promise.all(nodes.map((node) => node.stop())));

  const file = path.join(directory, 'compose.yaml');
  await writeFile(path.join(directory, 'web.env'), 'GREETING=hello\n');
  await writeFile(
    file,
    [
      'services:',
      '  web:',
      `    image: ${repository}:\${TAG}`,
      '    env_file: web.env',
      '    healthcheck: { test: [CMD, "true"], interval: 100ms, timeout: 100ms, retries: 1 }',
      '    deploy: { replicas: 2, update_config: { monitor: 300ms } }',
      '    x-berth: { track: main, healthy_deadline: 2s }',
      '',
    ].join('\n'),
  );
  const deployed = await berth('deploy', '-f', file, 'shop', '--wait');
  t.is(deployed.code, 0, deployed.stderr);
  t.is(deployed.stdout, `shop/web: revision 1 ${good.digest}\nshop/web: succeeded\n`);
  t.true(nodes.flatMap((node) => node.assignments).every((assignment) => assignment.image === `${repository}@${good.digest}`));

  const bad = await pushImage(registry.url, repository, { tag: 'other' });
  for (const node of nodes)
    node.healthOf = (assignment: SimulatedAssignment) => (assignment.image.endsWith(bad.digest) ? 'failed' : 'healthy');
  const pinned = path.join(directory, 'pinned.yaml');
  await writeFile(
    pinned,
    `services:\n  web:\n    image: ${repository}@${bad.digest}\n    healthcheck: { test: [CMD, "true"], interval: 100ms, timeout: 100ms, retries: 1 }\n    deploy: { replicas: 2, update_config: { monitor: 300ms } }\n`,
  );
  const reverted = await berth('deploy', '-f', pinned, 'shop', '--wait');
  t.is(reverted.code, 1);
  t.regex(reverted.stdout, /shop\/web: reverted: replica \d: the new replica failed/);
  t.regex(reverted.stderr, /^berth: shop\/web reverted: replica \d: the new replica failed/);
  const status = await berth('rollout', 'status', 'shop/web');
  t.is(status.code, 1);
  t.like(JSON.parse(status.stdout), { status: 'reverted', revision: 2, lastHealthy: 1 });
  const history = JSON.parse((await berth('service', 'history', 'shop/web')).stdout) as { history: Array<{ event: string }> };
  t.deepEqual(
    history.history.slice(0, 3).map((entry) => entry.event),
    ['reverted', 'reverting', 'started'],
  );

  await writeFile(file, 'services:\n  web:\n    image: x/y\n    deploy:\n      update_config: { paralelism: 2 }\n');
  const refused = await berth('deploy', '-f', file, 'shop');
  t.is(refused.code, 2);
  t.regex(refused.stderr, /services\.web\.deploy\.update_config\.paralelism: is not a supported key/);
});

test('berth rollout status --watch follows a rollout replica by replica: exit 0 once it succeeded, 1 with the reason when reverted, 1 past --timeout', async (t) => {
  const { registry, directory, berth } = await deployCli(t, { timeoutMs: 120_000 });
  const repository = uniqueRepo('shop');
  const good = await pushImage(registry.url, repository, { tag: 'good' });
  const bad = await pushImage(registry.url, repository, { tag: 'bad' });
  await pushImage(registry.url, repository, { tag: 'slow' });
  const { token } = JSON.parse((await berth('node', 'token')).stdout) as { token: string };
  const nodes = await Promise.all(['n1', 'n2'].map((name) => SimulatedNode.join(registry.url, token, name)));
  // Replicas stay starting until the watch has begun (so it sees the whole rollout however slowly it starts);
  // then each new one is healthy a second after it was first seen, or fails on the bad image; the slow one never ends starting.
  let watching = false;
  const firstSeen = new Map<string, number>();
  for (const node of nodes) {
    node.healthOf = (assignment: SimulatedAssignment) => {
      if (!watching) return 'starting';
      const key = `${assignment.replica}@${assignment.revision}`;
      if (!firstSeen.has(key)) firstSeen.set(key, Date.now());
      if (Date.now() - firstSeen.get(key)! < 1000) return 'starting';
      if (assignment.image.endsWith(bad.digest)) return 'failed';
      return assignment.image.endsWith(good.digest) ? 'healthy' : 'starting';
    };
    node.start();
  }
  t.teardown(() => Promise.all(nodes.map((node) => node.stop())));
  const watch = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'rollout', 'status', '--watch', ...args, 'shop/web', '--registry', registry.url]);
      const output = { stdout: '', stderr: '' };
      child.stdout.on('data', (chunk: Buffer) => {
        output.stdout += chunk.toString();
        if (output.stdout.includes('rolling out')) watching = true;
      });
      child.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
      const bound = setTimeout(() => child.kill(), 150_000);
      child.once('close', (code) => {
        clearTimeout(bound);
        resolve({ code, ...output });
      });
    });
  const deploy = async (tag: string) => {
    const file = path.join(directory, `${tag}.yaml`);
    await writeFile(
      file,
      `services:\n  web:\n    image: ${repository}:${tag}\n    healthcheck: { test: [CMD, "true"], interval: 100ms, timeout: 100ms, retries: 1 }\n    deploy: { replicas: 2, update_config: { monitor: 300ms } }\n    x-berth: { healthy_deadline: 60s }\n`,
    );
    const deployed = await berth('deploy', '-f', file, 'shop');
    t.is(deployed.code, 0, deployed.stderr);
  };

  await deploy('good');
  const watched = await watch();
  t.is(watched.code, 0, watched.stderr + watched.stdout);
  const lines = watched.stdout.trimEnd().split('\n');
  t.is(lines[0], 'shop/web: rolling out revision 1');
  t.is(lines.at(-1), 'shop/web: revision 1 succeeded');
  const replicaLines = lines.filter((line) => /^shop\/web\.\d@n\d: /.test(line));
  for (const slot of ['1', '2']) {
    const mine = replicaLines.filter((line) => line.startsWith(`shop/web.${slot}@`)).map((line) => line.replace(/^.*?: /, ''));
    t.true(
      mine.some((line) => line.startsWith('revision 1 starting')),
      `slot ${slot} was seen starting: ${lines.join('\n')}`,
    );
    t.is(mine.at(-1), 'revision 1 healthy');
  }
  // One replica at a time (parallelism 1): the first is healthy before the second starts.
  const firstHealthy = lines.findIndex((line) => line.endsWith('1 of 2 replicas healthy on revision 1'));
  t.true(firstHealthy > 0, lines.join('\n'));
  t.true(lines.indexOf('shop/web: 2 of 2 replicas healthy on revision 1') > firstHealthy);

  watching = false;
  await deploy('bad');
  const reverted = await watch();
  t.is(reverted.code, 1, reverted.stdout);
  t.regex(reverted.stdout, /^shop\/web: revision 2 failed, reverting to revision 1: replica \d: the new replica failed$/m);
  t.regex(reverted.stdout, /^shop\/web\.\d@n\d: revision 2 starting$/m);
  t.regex(reverted.stdout, /shop\/web: revision 2 reverted: replica \d: the new replica failed\n$/);
  t.regex(reverted.stderr, /^berth: shop\/web reverted revision 2: replica \d: the new replica failed\n$/);

  await deploy('slow');
  const started = Date.now();
  const timedOut = await watch('--timeout', '3');
  t.is(timedOut.code, 1, timedOut.stdout);
  t.is(timedOut.stderr, 'berth: shop/web: still rolling out after --timeout 3\n');
  t.regex(timedOut.stdout, /^shop\/web: rolling out revision 3$/m);
  t.true(Date.now() - started < 60_000, 'bounded by --timeout, not the rollout');
});
