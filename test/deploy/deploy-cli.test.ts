import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { run } from '../helpers/exec.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { SimulatedNode, type SimulatedAssignment } from '../helpers/simulated-node.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

test('berth node token, berth deploy --wait, rollout status and service history, as a user runs them', async (t) => {
  const registry = await RegistryProcess.start({ env: { BERTH_DEPLOY__CONTROLLER_TICK_MS: '200' } });
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-deploy-cli-'));
  t.teardown(async () => {
    await registry.destroy();
    await rm(directory, { recursive: true, force: true });
  });
  const berth = (...args: string[]) =>
    run(process.execPath, [CLI, ...args, '--registry', registry.url], { allowFailure: true, env: { TAG: 'main' }, timeoutMs: 60_000 });
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
