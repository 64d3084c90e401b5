import test from 'ava';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { layerOf, pushLayout, writeImageLayout, type Layer } from '../helpers/agent-images.js';
import { run } from '../helpers/exec.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { chainIds } from '../../oci/digest.js';

let registry: RegistryProcess;
let agent: AgentDaemon;
let workDir: string;
const mounts: string[] = [];

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-agent-unpack-'));
  registry = await RegistryProcess.start();
  agent = await AgentDaemon.start();
});

test.after.always(async () => {
  for (const mountPoint of mounts) await run('umount', [mountPoint], { allowFailure: true });
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function pushAndPull(repository: string, layers: Layer[]) {
  const layout = path.join(workDir, repository.replaceAll('/', '_'));
  await writeImageLayout(layout, 'test', { layers });
  await pushLayout(layout, 'test', `${registry.host}/${repository}:test`);
  const pull = await agent.cli(['pull', `${registry.host}/${repository}:test`]);
  return { pull, snapshots: chainIds(layers.map((layer) => layer.diffId)).map((chainId) => agent.snapshotFiles(chainId)) };
}

test('whiteouts become a 0/0 char device and an opaque xattr, and an overlay mount hides what they delete', async (t) => {
  const lower = await layerOf(
    [
      { name: 'a/', type: 'directory' },
      { name: 'a/keep', content: 'kept\n' },
      { name: 'a/gone', content: 'deleted above\n' },
      { name: 'opq/', type: 'directory' },
      { name: 'opq/old', content: 'hidden by opaque\n' },
      { name: 'opq/sub/deep', content: 'hidden too\n' },
    ],
    'gzip',
  );
  const upper = await layerOf(
    [
      { name: 'a/', type: 'directory' },
      { name: 'a/.wh.gone' },
      { name: 'opq/', type: 'directory' },
      { name: 'opq/.wh..wh..opq' },
      { name: 'opq/new', content: 'new\n' },
    ],
    'zstd',
  );
  const { snapshots } = await pushAndPull('agent/whiteouts', [lower, upper]);
  const [lowerDir, upperDir] = snapshots as [string, string];

  const whiteout = await lstat(path.join(upperDir, 'a/gone'));
  t.true(whiteout.isCharacterDevice());
  t.is(whiteout.rdev, 0);
  t.false(existsSync(path.join(upperDir, 'a/.wh.gone')));
  const opaque = await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', path.join(upperDir, 'opq')]);
  t.is(opaque.stdout, 'y');
  t.false(existsSync(path.join(upperDir, 'opq/.wh..wh..opq')));

  const merged = path.join(workDir, 'merged');
  await mkdir(merged);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${upperDir}:${lowerDir}`, merged]);
  mounts.push(merged);
  t.is(await readFile(path.join(merged, 'a/keep'), 'utf8'), 'kept\n');
  t.false(existsSync(path.join(merged, 'a/gone')));
  t.deepEqual((await readdir(path.join(merged, 'opq'))).sort(), ['new']);
});

test('hostile entries write nothing outside the snapshot', async (t) => {
  const outside = await mkdtemp('/tmp/berth-outside-');
  t.teardown(() => rm(outside, { recursive: true, force: true }));
  await writeFile(path.join(outside, 'sentinel'), 'untouched\n');
  const outsideMode = (await stat(outside)).mode;
  const shadowBefore = await stat('/etc/shadow');
  const climb = '../'.repeat(12);
  const hostile = await layerOf(
    [
      { name: `${climb}${outside.slice(1)}/dotdot`, content: 'escaped by ..\n' },
      { name: `${outside}/absolute`, content: 'escaped by absolute path\n' },
      { name: 'escape', type: 'symlink', linkname: outside },
      { name: 'escape/through-symlink', content: 'escaped through a symlink parent\n' },
      { name: 'escape/sentinel', content: 'overwritten\n' },
      { name: 'relative-escape', type: 'symlink', linkname: `${climb}${outside.slice(1)}` },
      { name: 'relative-escape/through-relative', content: 'escaped\n' },
      { name: 'victim/', type: 'directory', mode: 0o777 },
      { name: 'victim', type: 'symlink', linkname: outside },
      { name: 'shadow', type: 'link', linkname: '/etc/shadow' },
      { name: 'shadow-climb', type: 'link', linkname: `${climb}etc/shadow` },
      { name: 'dev/sda', type: 'block-device' },
      { name: 'dev/null', type: 'character-device' },
      { name: 'pipe', type: 'fifo' },
      { name: 'bin/su', content: 'setuid\n', mode: 0o6755 },
      { name: 'bin/su-link', type: 'link', linkname: 'bin/su' },
    ],
    'gzip',
  );
  const { pull, snapshots } = await pushAndPull('agent/hostile', [hostile]);
  const root = snapshots[0]!;

  t.deepEqual(await readdir(outside), ['sentinel']);
  t.is(await readFile(path.join(outside, 'sentinel'), 'utf8'), 'untouched\n');
  t.is((await stat(outside)).mode, outsideMode, 'a directory replaced by a symlink does not pass its mode on');
  const shadowAfter = await stat('/etc/shadow');
  t.is(shadowAfter.nlink, shadowBefore.nlink);
  t.is(shadowAfter.mtimeMs, shadowBefore.mtimeMs);

  t.is(await readFile(path.join(root, outside, 'dotdot'), 'utf8'), 'escaped by ..\n', '.. is confined to the snapshot');
  t.is(await readFile(path.join(root, outside, 'absolute'), 'utf8'), 'escaped by absolute path\n', 'an absolute path is confined to the snapshot');
  t.true((await lstat(path.join(root, 'escape'))).isSymbolicLink());
  t.false(existsSync(path.join(root, 'shadow')));
  t.false(existsSync(path.join(root, 'shadow-climb')));
  t.false(existsSync(path.join(root, 'dev/sda')));
  t.false(existsSync(path.join(root, 'dev/null')));
  t.false(existsSync(path.join(root, 'pipe')));
  t.is((await stat(path.join(root, 'bin/su'))).mode & 0o7777, 0o755, 'setuid and setgid are stripped');
  t.is((await stat(path.join(root, 'bin/su-link'))).ino, (await stat(path.join(root, 'bin/su'))).ino, 'a hardlink inside the layer works');

  for (const skipped of ['escape/through-symlink', 'relative-escape/through-relative', 'shadow', 'dev/sda', 'pipe']) {
    t.regex(pull.stdout, new RegExp(`WARNING: layer \\w+: ${skipped}: skipped`));
  }
});
