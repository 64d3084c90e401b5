import { copyFile, cp, mkdir, mkdtemp, readFile, realpath, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DockerDaemon } from './dockerd.js';
import { run } from './exec.js';
import { createBusyboxRootfs, tarDirectory } from './test-images.js';

// Where the root Dockerfile's base image keeps what the registry runs, as in node:20-bookworm-slim (setpriv is
// util-linux's, essential in Debian) plus the Debian packages the Dockerfile installs.
const BASE_PROGRAMS: Record<string, string> = {
  node: 'usr/local/bin/node',
  'redis-server': 'usr/bin/redis-server',
  setpriv: 'usr/bin/setpriv',
  tini: 'usr/bin/tini',
};
const BASE_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * Imports a stand-in for the Dockerfile's NODE_IMAGE (Docker Hub is out of reach): a busybox userland plus
 * this machine's node, redis-server, setpriv and tini and the shared libraries ldd says they load.
 */
export async function importNodeBaseImage(daemon: DockerDaemon, workDir: string, tag: string): Promise<void> {
  const rootfs = await mkdtemp(path.join(workDir, 'node-base-'));
  await createBusyboxRootfs(rootfs, tag);
  const binaries: string[] = [];
  for (const [program, target] of Object.entries(BASE_PROGRAMS)) {
    const binary = await realpath((await run('sh', ['-c', `command -v ${program}`])).stdout.trim());
    await copyInto(rootfs, binary, target);
    binaries.push(binary);
  }
  for (const library of await sharedLibraries(binaries)) await copyInto(rootfs, library, library);
  await writeFile(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(path.join(rootfs, 'etc', 'group'), 'root:x:0:\n');
  await run('chmod', ['1777', path.join(rootfs, 'tmp')]);
  const tarball = `${rootfs}.tar`;
  await tarDirectory(rootfs, tarball);
  await daemon.docker(['import', '--change', `ENV PATH=${BASE_PATH}`, '--change', 'CMD ["node"]', tarball, tag]);
}

async function copyInto(rootfs: string, source: string, target: string): Promise<void> {
  const destination = path.join(rootfs, target);
  await mkdir(path.dirname(destination), { recursive: true });
  await copyFile(source, destination);
}

/** Every absolute library path in ldd's answer (the loader included), by the name the binaries ask for. */
async function sharedLibraries(binaries: string[]): Promise<Set<string>> {
  const { stdout } = await run('ldd', binaries);
  return new Set(stdout.match(/\/\S+\.so[^\s:]*/g) ?? []);
}

/**
 * A build context for the Dockerfile's offline variant (APP_SOURCE=prebuilt): the Dockerfile and package.json
 * from `repoRoot`, the compiled server from `distDir` and the production packages package-lock.json lists,
 * copied from repoRoot/node_modules, under prebuilt/.
 */
export async function writePrebuiltBuildContext(repoRoot: string, distDir: string, context: string): Promise<void> {
  await mkdir(path.join(context, 'prebuilt', 'node_modules'), { recursive: true });
  for (const file of ['Dockerfile', '.dockerignore', 'package.json']) await copyFile(path.join(repoRoot, file), path.join(context, file));
  // The registry and the shared kernel it imports; the agent, tests and benchmarks stay out of the image.
  for (const part of ['oci', 'platform', 'server']) {
    await cp(path.join(distDir, part), path.join(context, 'prebuilt', 'dist', part), { recursive: true });
  }
  for (const name of await productionPackages(repoRoot)) {
    // verbatimSymlinks: a package's relative links stay relative instead of pointing into this machine.
    await cp(path.join(repoRoot, 'node_modules', name), path.join(context, 'prebuilt', 'node_modules', name), {
      recursive: true,
      verbatimSymlinks: true,
    });
  }
}

/**
 * Top-level packages that `npm ci --omit=dev` installs; nested ones travel inside them. An optional package
 * for another platform (a prebuilt addon's other builds) is listed but not installed here.
 */
async function productionPackages(repoRoot: string): Promise<string[]> {
  const lock = JSON.parse(await readFile(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([key, entry]) => key.startsWith('node_modules/') && !key.slice('node_modules/'.length).includes('node_modules/') && !entry.dev)
    .filter(([key, entry]) => !entry.optional || existsSync(path.join(repoRoot, key)))
    .map(([key]) => key.slice('node_modules/'.length));
}
