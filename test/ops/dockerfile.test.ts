import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { DockerDaemon } from '../helpers/dockerd.js';
import { assertPushRemovePull, DockerWorkbench } from '../helpers/docker-workbench.js';
import { freePort } from '../helpers/free-port.js';
import { importNodeBaseImage, writePrebuiltBuildContext } from '../helpers/registry-image.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIST = fileURLToPath(new URL('../../', import.meta.url));
const BASE_IMAGE = 'berth-test/node-base:1';
const REGISTRY_IMAGE = 'berth-test/registry:1';
const CONTAINER = 'berth-registry';
const HEALTHY_TIMEOUT_MS = 30_000;

async function healthStatus(daemon: DockerDaemon, container: string): Promise<string> {
  return (await daemon.docker(['inspect', '--format', '{{.State.Health.Status}}', container])).stdout.trim();
}

async function waitUntilHealthy(daemon: DockerDaemon, container: string): Promise<void> {
  const deadline = Date.now() + HEALTHY_TIMEOUT_MS;
  let status = await healthStatus(daemon, container);
  while (status !== 'healthy') {
    if (Date.now() > deadline || status === 'unhealthy') {
      const { stdout, stderr } = await daemon.docker(['logs', container]);
      throw new Error(`container health is ${status}; its log:\n${stdout}${stderr}`);
    }
    await sleep(250);
    status = await healthStatus(daemon, container);
  }
}

test('the root Dockerfile builds offline and its container serves docker push and pull, healthy and not as root', async (t) => {
  const workDir = await mkdtemp(path.join(tmpdir(), 'berth-dockerfile-'));
  const daemon = await DockerDaemon.start();
  t.teardown(async () => {
    await daemon.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  const context = path.join(workDir, 'context');
  await Promise.all([importNodeBaseImage(daemon, workDir, BASE_IMAGE), writePrebuiltBuildContext(REPO_ROOT, DIST, context)]);
  const buildArgs = { NODE_IMAGE: BASE_IMAGE, APP_SOURCE: 'prebuilt', RUNTIME_PACKAGES: 'base' };
  await daemon.buildKit([
    '--network',
    'none',
    ...Object.entries(buildArgs).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]),
    '--tag',
    REGISTRY_IMAGE,
    context,
  ]);

  // Light-mode dockerd has no bridge: the registry shares the host's network, on a port of its own. The
  // health check is the Dockerfile's; only its interval is shortened.
  const port = await freePort();
  await daemon.docker([
    'run',
    '--detach',
    '--name',
    CONTAINER,
    '--network',
    'host',
    '--env',
    `BERTH_HTTP__PORT=${port}`,
    '--health-interval',
    '1s',
    REGISTRY_IMAGE,
  ]);
  await waitUntilHealthy(daemon, CONTAINER);

  const { stdout: processes } = await daemon.docker(['top', CONTAINER, '-o', 'pid,uid,comm']);
  const owners = processes
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/).slice(1));
  t.deepEqual(owners.map(([, command]) => command).sort(), ['node', 'redis-server', 'tini'], processes);
  t.true(
    owners.every(([uid]) => uid === '10001'),
    processes,
  );

  const images = new DockerWorkbench(daemon, workDir);
  const base = await images.importBusybox('through-the-container');
  const reference = `127.0.0.1:${port}/ops/busybox:1`;
  await daemon.docker(['tag', base, reference]);
  await assertPushRemovePull(t, images, reference, 1, [base]);
});
