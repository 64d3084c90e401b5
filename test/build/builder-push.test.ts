import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MediaType } from '../../oci/media-types.js';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { ADMIN, AuthRegistry } from '../helpers/auth-registry.js';
import { DockerDaemon } from '../helpers/dockerd.js';
import { DockerWorkbench } from '../helpers/docker-workbench.js';
import { run } from '../helpers/exec.js';
import { createBusyboxRootfs } from '../helpers/test-images.js';

/** `berth-agent build --push`: every -t name pushed to its Berth registry with the saved credentials, then pulled and run by docker. */

let registry: AuthRegistry;
let dockerd: DockerDaemon;
let agent: AgentDaemon;
let workDir: string;
let contextDir: string;
const CI = { username: 'ci', password: 'ci-password-1' };

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-build-push-'));
  contextDir = path.join(workDir, 'context');
  await createBusyboxRootfs(path.join(contextDir, 'rootfs'), 'build-push');
  await mkdir(contextDir, { recursive: true });
  await writeFile(
    path.join(contextDir, 'Dockerfile'),
    ['FROM scratch', 'COPY rootfs/ /', 'RUN echo "built by berth" > /message', 'CMD ["cat", "/message"]'].join('\n'),
  );
  [registry, dockerd, agent] = await Promise.all([AuthRegistry.start(), DockerDaemon.start(), AgentDaemon.start()]);
  await registry.addUser(CI.username, CI.password);
  await registry.grant(`user:${CI.username}`, 'team/**', ['pull', 'push']);
  await agent.cli(['login', '-u', CI.username, '--password-stdin', registry.host], { input: `${CI.password}\n` });
  await dockerd.docker(['login', registry.host, '-u', ADMIN.username, '--password-stdin'], { input: ADMIN.password });
});

test.after.always(async () => {
  await agent?.destroy();
  await dockerd?.stop();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test.serial('build --push pushes every -t name; docker pulls the same digest and runs it', async (t) => {
  const names = [`${registry.host}/team/app:1`, `${registry.host}/team/app:latest`, `${registry.host}/team/mirror:1`];
  const { stderr } = await agent.cli(['build', ...names.flatMap((name) => ['-t', name]), '--push', contextDir]);
  const digests = names.map((name) => {
    const escaped = name.replace(/[.]/g, '\\.');
    return new RegExp(`^#\\d+ \\d+\\.\\d+ pushing manifest for ${escaped}@(sha256:[0-9a-f]{64}) done$`, 'm').exec(stderr)?.[1];
  });
  t.truthy(digests[0]);
  t.deepEqual(digests, [digests[0], digests[0], digests[0]]);
  t.regex(stderr, /^#\d+ \d+\.\d+ pushing layer [0-9a-f]{12} done$/m);

  const docker = new DockerWorkbench(dockerd, workDir);
  for (const name of [names[0], names[2]] as string[]) {
    const pulled = await docker.pull(name);
    t.is(pulled.digest, digests[0] as string);
    t.is((await dockerd.docker(['run', '--rm', '--network', 'none', name])).stdout, 'built by berth\n');
  }
});

/** The manifest a registry serves for a tag, as a docker client asking for either family would get it. */
async function registryManifest(repository: string, tag: string): Promise<{ contentType: string | null; manifest: ManifestDocument }> {
  const token = await registry.token([`repository:${repository}:pull`], CI);
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    headers: { Authorization: `Bearer ${token}`, Accept: [MediaType.dockerManifest, MediaType.ociManifest].join(', ') },
  });
  return { contentType: response.headers.get('content-type'), manifest: (await response.json()) as ManifestDocument };
}

interface ManifestDocument {
  mediaType: string;
  config: { mediaType: string };
  layers: Array<{ mediaType: string }>;
}

test.serial('--output oci-mediatypes=false pushes a docker (v2s2) manifest docker runs; OCI types by default', async (t) => {
  const docker = new DockerWorkbench(dockerd, workDir);
  for (const [tag, output, family] of [
    ['v2s2', 'type=image,oci-mediatypes=false', 'docker'],
    ['docker-exporter', 'type=docker', 'docker'],
    ['oci', undefined, 'oci'],
  ] as const) {
    const name = `${registry.host}/team/media-types:${tag}`;
    await agent.cli(['build', '-t', name, '--push', ...(output ? ['--output', output] : []), contextDir]);
    const { contentType, manifest } = await registryManifest('team/media-types', tag);
    const expected =
      family === 'docker'
        ? { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig, layer: MediaType.dockerLayer }
        : { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip };
    t.is(contentType, expected.manifest, tag);
    t.is(manifest.mediaType, expected.manifest, tag);
    t.is(manifest.config.mediaType, expected.config, tag);
    t.deepEqual([...new Set(manifest.layers.map((layer) => layer.mediaType))], [expected.layer], tag);
    await docker.pull(name);
    t.is((await dockerd.docker(['run', '--rm', '--network', 'none', name])).stdout, 'built by berth\n', tag);
  }
  const refused = await agent.cli(['build', '--output', 'type=image,oci-mediatypes=no', contextDir], { allowFailure: true });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /invalid --output type=image,oci-mediatypes=no: oci-mediatypes is true or false/);
});

test.serial('build --push without a tag, or to a repository the credentials cannot push to, fails with the reason', async (t) => {
  const untagged = await agent.cli(['build', '--push', contextDir], { allowFailure: true });
  t.is(untagged.code, 1);
  t.regex(untagged.stderr, /a tag is needed when pushing to a registry/);
  const denied = await agent.cli(['build', '-t', `${registry.host}/other/app:1`, '--push', contextDir], { allowFailure: true });
  t.is(denied.code, 1);
  t.regex(denied.stderr, new RegExp(`failed to build: pushing ${registry.host.replace(/[.]/g, '\\.')}/other/app:1: .*denied`));
});

test.serial('build --pull pulls a FROM image again: a newer push of its tag is used, the stored one otherwise', async (t) => {
  const docker = new DockerWorkbench(dockerd, workDir);
  const base = `${registry.host}/team/base:1`;
  const busybox = await docker.importBusybox('build-pull');
  const pushBase = async (version: string) => {
    await docker.build(base, [`FROM ${busybox}`, `RUN echo ${version} > /version`].join('\n'));
    await docker.push(base);
  };
  const child = path.join(workDir, 'child');
  await mkdir(child, { recursive: true });
  await writeFile(path.join(child, 'Dockerfile'), [`FROM ${base}`, 'CMD ["cat", "/version"]'].join('\n'));
  const version = async (...flags: string[]) => {
    await agent.cli(['build', '-t', 'local/child:1', ...flags, child]);
    return (await agent.cli(['run', '--rm', '--network', 'none', 'local/child:1'])).stdout;
  };

  await pushBase('v1');
  t.is(await version(), 'v1\n');
  await pushBase('v2');
  t.is(await version(), 'v1\n');
  t.is(await version('--pull'), 'v2\n');
});

test.serial('build --output type=docker writes an archive docker loads and runs; type=oci a plain OCI layout', async (t) => {
  const dockerArchive = path.join(workDir, 'built-docker.tar');
  const ociArchive = path.join(workDir, 'built-oci.tar');
  await agent.cli(['build', '-t', 'local/exported:1', '--output', `type=docker,dest=${dockerArchive}`, contextDir]);
  t.regex((await dockerd.docker(['load', '-i', dockerArchive])).stdout, /Loaded image: local\/exported:1/);
  t.is((await dockerd.docker(['run', '--rm', '--network', 'none', 'local/exported:1'])).stdout, 'built by berth\n');

  await agent.cli(['build', '-t', 'local/exported:1', '--output', `type=oci,dest=${ociArchive}`, contextDir]);
  const listing = (await run('tar', ['-tf', ociArchive])).stdout.split('\n');
  t.true(listing.includes('oci-layout') && listing.includes('index.json'));
  t.false(listing.includes('manifest.json'));

  const refused = await agent.cli(['build', '--output', 'type=local,dest=out', contextDir], { allowFailure: true });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /invalid --output type=local,dest=out: type=image, type=oci or type=docker/);
});
