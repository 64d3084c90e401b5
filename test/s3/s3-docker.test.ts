import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DockerDaemon } from '../helpers/dockerd.js';
import { assertPushRemovePull, DockerWorkbench } from '../helpers/docker-workbench.js';
import { serverErrorLines } from '../helpers/http-client.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { S3Server } from '../helpers/s3-server.js';

// One dockerd and one S3 server for the file; a registry on that bucket per pull mode.
let daemon: DockerDaemon | undefined;
let s3: S3Server | undefined;
let workDir: string | undefined;
let images: DockerWorkbench;
const registries = new Map<string, RegistryProcess>();

const modes = [
  { name: 'redirect', redirect: true },
  { name: 'proxy', redirect: false },
] as const;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-s3-docker-test-'));
  await Promise.all([DockerDaemon.start().then((started) => (daemon = started)), S3Server.start().then((started) => (s3 = started))]);
  images = new DockerWorkbench(daemon!, workDir);
  for (const mode of modes) {
    registries.set(
      mode.name,
      await RegistryProcess.start({ env: s3!.registryEnv({ redirect: mode.redirect, prefix: `registry-${mode.name}` }) }),
    );
  }
});

test.after.always(async () => {
  await daemon?.stop();
  await Promise.all([...registries.values()].map((registry) => registry.destroy()));
  await s3?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Blob GETs the registry answered with `status`, from its request log. */
function blobGets(registry: RegistryProcess, status: number): number {
  return (
    registry.logs.match(new RegExp(`"method":"GET","path":"/v2/[^"]+/blobs/sha256:[0-9a-f]{64}"[^\\n]*"status":${status}`, 'g'))?.length ??
    0
  );
}

for (const mode of modes) {
  test(`docker pushes a multi-layer image to S3 storage and pulls it back in ${mode.name} mode, and it runs`, async (t) => {
    const registry = registries.get(mode.name)!;
    const base = await images.importBusybox(`s3-${mode.name}`);
    const reference = `${registry.host}/s3/${mode.name}:v1`;
    await images.build(
      reference,
      [
        `FROM ${base}`,
        'COPY greeting.txt /greeting.txt',
        `RUN echo "layer built in ${mode.name} mode" > /built.txt`,
        'CMD ["cat", "/greeting.txt", "/built.txt"]',
      ].join('\n'),
      { 'greeting.txt': `hello from S3 (${mode.name})\n` },
    );
    await assertPushRemovePull(t, images, reference, 3, [base]);
    t.is(await images.runContainer(reference), `hello from S3 (${mode.name})\nlayer built in ${mode.name} mode\n`);

    // The config and three layers: redirected to S3, or streamed by the registry.
    t.is(blobGets(registry, mode.redirect ? 307 : 200), 4, 'blob GETs answered as the mode says');
    t.is(blobGets(registry, mode.redirect ? 200 : 307), 0);
    t.deepEqual(serverErrorLines(registry.logs), []);
    t.deepEqual(await s3!.keys(`registry-${mode.name}/_uploads/`), []);
  });
}
