import test from 'ava';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { layerOf, pushLayout, writeImageLayout, writeIndexLayout, type Layer } from '../helpers/agent-images.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { chainIds } from '../../oci/digest.js';

let registry: RegistryProcess;
let agent: AgentDaemon;
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-agent-pull-'));
  registry = await RegistryProcess.start();
  agent = await AgentDaemon.start();
});

test.after.always(async () => {
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Writes an OCI layout for the layers and pushes it with skopeo as `<registry>/<repository>:<tag>`. */
async function pushImage(repository: string, tag: string, layers: Layer[]) {
  const layout = path.join(workDir, `${repository.replaceAll('/', '_')}-${tag}`);
  const written = await writeImageLayout(layout, tag, { layers });
  await pushLayout(layout, tag, `${registry.host}/${repository}:${tag}`);
  return written;
}

/** How many times the registry served this blob (any repository). */
function blobGets(digest: string): number {
  return registry.logs.split('\n').filter((line) => line.includes(`"method":"GET"`) && line.includes(`/blobs/${digest}"`)).length;
}

const base = layerOf(
  [
    { name: 'etc/', type: 'directory' },
    { name: 'etc/os-release', content: 'NAME=berth-test\n' },
    { name: 'bin/', type: 'directory' },
    { name: 'bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o4755 },
  ],
  'gzip',
);
const middle = layerOf(
  [
    { name: 'usr/share/doc/readme', content: 'docs\n' },
    { name: 'usr/lib/libx.so', type: 'symlink', linkname: 'libx.so.1' },
  ],
  'zstd',
);
const top = layerOf([{ name: 'app/main', content: 'main v1\n', mode: 0o755, uid: 1000, gid: 1000 }], 'none');
const otherTop = layerOf([{ name: 'app/other', content: 'other\n' }], 'gzip');

test.serial('pulls a gzip + zstd + plain tar image through the daemon, unpacks each layer and lists it', async (t) => {
  const layers = [await base, await middle, await top];
  const { configDigest } = await pushImage('agent/multi', '1', layers);

  const pull = await agent.cli(['pull', `${registry.host}/agent/multi:1`]);
  t.regex(pull.stdout, /1: Pulling from agent\/multi/);
  t.is(pull.stdout.match(/: Pull complete/g)?.length, 3);
  t.regex(pull.stdout, new RegExp(`Status: Downloaded newer image for ${registry.host}/agent/multi:1`));

  const chains = chainIds(layers.map((layer) => layer.diffId));
  t.deepEqual(await agent.snapshots(), chains.map((id) => id.replace(':', '-')).sort());
  t.is(await readFile(path.join(agent.snapshotFiles(chains[0]!), 'etc/os-release'), 'utf8'), 'NAME=berth-test\n');
  t.is(await readFile(path.join(agent.snapshotFiles(chains[1]!), 'usr/share/doc/readme'), 'utf8'), 'docs\n');
  const main = path.join(agent.snapshotFiles(chains[2]!), 'app/main');
  t.is(await readFile(main, 'utf8'), 'main v1\n');
  t.like(await stat(main), { uid: 1000, gid: 1000 }, 'ownership from the tar is applied as root');
  t.is((await lstat(path.join(agent.snapshotFiles(chains[1]!), 'usr/lib/libx.so'))).isSymbolicLink(), true);

  const images = await agent.cli(['images']);
  const [header, row] = images.stdout.trim().split('\n');
  t.regex(header!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  t.regex(row!, new RegExp(`^${registry.host}/agent/multi\\s+1\\s+${configDigest.slice(7, 19)}\\s+\\S.* ago\\s+\\d`));
});

test.serial('a second image sharing two layers downloads and unpacks only its own layer', async (t) => {
  const shared = [await base, await middle];
  await pushImage('agent/sibling', 'latest', [...shared, await otherTop]);
  const before = await agent.snapshots();

  const pull = await agent.cli(['pull', `${registry.host}/agent/sibling`]);
  t.is(pull.stdout.match(/: Already exists/g)?.length, 2);
  t.is(pull.stdout.match(/: Pull complete/g)?.length, 1);
  t.is((await agent.snapshots()).length, before.length + 1);
  for (const layer of shared) t.is(blobGets(layer.digest), 1, `shared layer ${layer.digest} was fetched once`);
  t.is(blobGets((await otherTop).digest), 1);

  const images = await agent.cli(['images']);
  t.regex(images.stdout, /agent\/sibling\s+latest/);
  t.regex(images.stdout, /agent\/multi\s+1/);
});

test.serial('rmi deletes what only that image used; prune removes what nothing references', async (t) => {
  const [b, m, topLayer] = [await base, await middle, await top];
  const [, , multiTopChain] = chainIds([b, m, topLayer].map((layer) => layer.diffId));

  const rmi = await agent.cli(['rmi', `${registry.host}/agent/multi:1`]);
  t.regex(rmi.stdout, /Untagged: .*agent\/multi:1/);
  t.regex(rmi.stdout, new RegExp(`Deleted: ${topLayer.digest}`));
  t.false((await agent.snapshots()).includes(multiTopChain!.replace(':', '-')));
  t.true((await agent.blobs()).includes(b.digest), 'a layer the sibling shares stays');
  t.is((await agent.snapshots()).length, 3);

  // Leftovers of interrupted pulls: a partial download and a half-written snapshot.
  await writeFile(path.join(agent.dataDir, 'content', 'ingest', `sha256-${'0'.repeat(64)}`), 'partial');
  await mkdir(path.join(agent.dataDir, 'snapshots', '.incomplete-deadbeef', 'fs'), { recursive: true });
  const prune = await agent.cli(['prune']);
  t.regex(prune.stdout, /Total reclaimed space/);
  t.deepEqual(await readdirSafe(path.join(agent.dataDir, 'content', 'ingest')), []);
  t.false((await readdirSafe(path.join(agent.dataDir, 'snapshots'))).includes('.incomplete-deadbeef'));
  t.is((await agent.snapshots()).length, 3, 'prune keeps what the sibling references');

  await agent.cli(['rmi', `${registry.host}/agent/sibling:latest`]);
  await agent.cli(['prune']);
  t.deepEqual(await agent.snapshots(), []);
  t.deepEqual(await agent.blobs(), []);
  t.false((await agent.cli(['images'])).stdout.includes('agent/'));
});

test.serial('rmi of an unknown image fails like docker', async (t) => {
  const result = await agent.cli(['rmi', `${registry.host}/agent/nothing:here`], { allowFailure: true });
  t.is(result.code, 1);
  t.regex(result.stderr, /No such image/);
});

test('an image index resolves to linux/amd64', async (t) => {
  const layout = path.join(workDir, 'multiarch');
  const platforms = [
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'linux', architecture: 'amd64' },
    { os: 'windows', architecture: 'amd64' },
  ];
  const images = [];
  for (const platform of platforms) {
    images.push({
      platform,
      layers: [await layerOf([{ name: 'platform', content: `${platform.os}/${platform.architecture}\n` }], 'gzip')],
    });
  }
  const { indexDigest, configDigests } = await writeIndexLayout(layout, 'multi', images);
  await pushLayout(layout, 'multi', `${registry.host}/agent/multiarch:multi`);

  const pull = await agent.cli(['pull', `${registry.host}/agent/multiarch:multi`]);
  t.regex(pull.stdout, new RegExp(`Digest: ${indexDigest}`));
  const listing = await agent.cli(['images']);
  t.regex(listing.stdout, new RegExp(`agent/multiarch\\s+multi\\s+${configDigests[1]!.slice(7, 19)}`));
  const [chain] = chainIds([images[1]!.layers[0]!.diffId]);
  t.is(await readFile(path.join(agent.snapshotFiles(chain!), 'platform'), 'utf8'), 'linux/amd64\n');
});

function readdirSafe(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

test('the API socket and the data directory are root-only', async (t) => {
  t.is((await stat(path.join(agent.dataDir, 'agent.sock'))).mode & 0o777, 0o600);
  t.is((await stat(agent.dataDir)).mode & 0o777, 0o700);
});

test('a second daemon on the same socket refuses to start', async (t) => {
  const second = await AgentDaemon.start([], { BERTH_AGENT_SOCKET: path.join(agent.dataDir, 'agent.sock') }).catch((error: Error) => error);
  t.true(second instanceof Error);
  t.regex((second as Error).message, /another berth-agent is listening/);
});
