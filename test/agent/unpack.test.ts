import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { layerOf, layerOfTar, pushLayout, writeImageLayout, type Layer, type TarEntry } from '../helpers/agent-images.js';
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

async function pushAndPull(repository: string, layers: Layer[], options: { allowFailure?: boolean } = {}) {
  const layout = path.join(workDir, repository.replaceAll('/', '_'));
  await writeImageLayout(layout, 'test', { layers });
  await pushLayout(layout, 'test', `${registry.host}/${repository}:test`);
  const pull = await agent.cli(['pull', `${registry.host}/${repository}:test`], options);
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
  t.is(
    await readFile(path.join(root, outside, 'absolute'), 'utf8'),
    'escaped by absolute path\n',
    'an absolute path is confined to the snapshot',
  );
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

for (const [index, hostileName] of ['.wh..', '.wh...', '.wh.', 'dir/.wh.a/b'].entries()) {
  // Serial: the test compares the snapshot list before and after.
  test.serial(
    `a layer with the whiteout entry ${hostileName} fails the pull, changes nothing outside it and caches no snapshot`,
    async (t) => {
      const snapshotsDir = path.join(agent.dataDir, 'snapshots');
      const sentinelDir = path.join(snapshotsDir, `.sentinel-${index}`);
      await mkdir(sentinelDir, { recursive: true });
      await writeFile(path.join(sentinelDir, 'keep'), 'untouched\n');
      const snapshotsBefore = await agent.snapshots();
      const repository = `agent/hostile-whiteout-${index}`;
      const hostile = await layerOf(
        [{ name: 'dir/', type: 'directory' }, { name: 'dir/file', content: 'data\n' }, { name: hostileName }],
        'gzip',
      );

      const { pull, snapshots } = await pushAndPull(repository, [hostile], { allowFailure: true });

      t.not(pull.code, 0);
      t.regex(
        pull.stderr,
        new RegExp(`Error: layer ${hostile.digest}: .*${JSON.stringify(hostileName).replaceAll('.', '\\.')}.*refusing the layer`),
      );
      t.is(await readFile(path.join(sentinelDir, 'keep'), 'utf8'), 'untouched\n');
      t.deepEqual(await readdir(sentinelDir), ['keep']);
      t.false(existsSync(snapshots[0]!), 'no snapshot is cached');
      t.deepEqual(await agent.snapshots(), snapshotsBefore);
      t.deepEqual(
        (await readdir(snapshotsDir)).filter((name) => name.startsWith('.incomplete-')),
        [],
        'the work directory is removed',
      );
      t.notRegex((await agent.cli(['images'])).stdout, new RegExp(repository));

      const retry = await agent.cli(['pull', `${registry.host}/${repository}:test`], { allowFailure: true });
      t.not(retry.code, 0, 'the next pull unpacks again and fails the same way');
      t.regex(retry.stderr, /refusing the layer/);
    },
  );
}

const GIB = 1024 * 1024 * 1024;
const DATA_OFFSET = 512 * 1024 * 1024;

/** GNU tar's archive of a 1 GiB sparse file with `head` at 0 and a marker at 512 MiB, in `format` (and PAX sparse `version`). */
async function sparseTar(format: 'pax' | 'gnu', version?: string): Promise<Buffer> {
  const source = await mkdtemp(path.join(workDir, `sparse-${format}-`));
  const file = path.join(source, 'sparse.img');
  await writeFile(file, 'head');
  const handle = await open(file, 'r+');
  await handle.write('DATA-AT-512MiB', DATA_OFFSET);
  await handle.truncate(GIB);
  await handle.close();
  const archive = path.join(source, 'archive.tar');
  const versionFlag = version ? [`--sparse-version=${version}`] : [];
  await run('tar', ['--sparse', `--format=${format}`, ...versionFlag, '-C', source, '-cf', archive, 'sparse.img']);
  return readFile(archive);
}

async function bytesAt(file: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(length), 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

for (const version of ['1.0', '0.1']) {
  test(`a GNU tar PAX sparse file (format ${version}) unpacks with its size, its data in place and its holes still holes`, async (t) => {
    const layer = await layerOfTar(await sparseTar('pax', version), 'gzip');
    const { snapshots } = await pushAndPull(`agent/sparse-pax-${version}`, [layer]);
    const file = path.join(snapshots[0]!, 'sparse.img');

    t.deepEqual(await readdir(snapshots[0]!), ['sparse.img'], 'no GNUSparseFile.N directory');
    const stats = await stat(file);
    t.is(stats.size, GIB);
    t.is((await bytesAt(file, 0, 4)).toString(), 'head');
    t.is((await bytesAt(file, DATA_OFFSET, 14)).toString(), 'DATA-AT-512MiB');
    t.true(
      (await bytesAt(file, 256 * 1024 * 1024, 65536)).every((byte) => byte === 0),
      'a hole reads as zeros',
    );
    t.true(
      (await bytesAt(file, GIB - 65536, 65536)).every((byte) => byte === 0),
      'the tail hole reads as zeros',
    );
    t.true(stats.blocks * 512 < 1024 * 1024, `still sparse on disk (${stats.blocks} blocks)`);
  });
}

test('a GNU tar PAX sparse file of format 0.0 is refused with a message', async (t) => {
  const layer = await layerOfTar(await sparseTar('pax', '0.0'), 'gzip');
  const { pull } = await pushAndPull('agent/sparse-pax-0.0', [layer], { allowFailure: true });

  t.not(pull.code, 0);
  t.regex(pull.stderr, /entry "sparse\.img" is a PAX sparse file of format 0\.0, which is not supported/);
});

test('a GNU-format (type S) sparse file is refused with a message instead of unpacked wrong', async (t) => {
  const layer = await layerOfTar(await sparseTar('gnu'), 'gzip');
  const { pull, snapshots } = await pushAndPull('agent/sparse-gnu', [layer], { allowFailure: true });

  t.not(pull.code, 0);
  t.regex(
    pull.stderr,
    new RegExp(
      `Error: layer ${layer.digest}: entry "sparse.img" has an unknown tar type \\(an old GNU sparse file, type S, is not supported`,
    ),
  );
  t.false(existsSync(snapshots[0]!));
});

test('files of several MiB unpack with every byte, mode and owner, beside small ones', async (t) => {
  const big = randomBytes(5 * 1024 * 1024 + 7);
  const justOver = randomBytes(1024 * 1024);
  const entries: TarEntry[] = [
    { name: 'data/', type: 'directory' },
    { name: 'data/big.bin', content: big, mode: 0o640, uid: 12, gid: 34 },
    { name: 'data/one-mib.bin', content: justOver, mode: 0o600 },
    { name: 'data/small.txt', content: 'small\n' },
  ];
  const { snapshots } = await pushAndPull('agent/big-files', [await layerOf(entries, 'gzip')]);
  const root = snapshots[0]!;
  t.true((await readFile(path.join(root, 'data/big.bin'))).equals(big));
  t.true((await readFile(path.join(root, 'data/one-mib.bin'))).equals(justOver));
  t.is(await readFile(path.join(root, 'data/small.txt'), 'utf8'), 'small\n');
  const stats = await stat(path.join(root, 'data/big.bin'));
  t.deepEqual([stats.mode & 0o7777, stats.uid, stats.gid], [0o640, 12, 34]);
});

test('a layer of 20,000 small files unpacks every file with its content and mode', async (t) => {
  const files = 20_000;
  const entries: TarEntry[] = [];
  for (let index = 0; index < files; index += 1) {
    const directory = `many/d${Math.floor(index / 1000)}`;
    if (index % 1000 === 0) entries.push({ name: `${directory}/`, type: 'directory', mode: 0o750 });
    entries.push({
      name: `${directory}/f${index}`,
      content: `file ${index}\n`,
      mode: index % 2 === 0 ? 0o644 : 0o700,
      uid: index % 7,
      gid: index % 5,
    });
  }
  const { snapshots } = await pushAndPull('agent/many-files', [await layerOf(entries, 'gzip')]);
  const root = snapshots[0]!;

  const wrong: string[] = [];
  for (let index = 0; index < files; index += 1) {
    const file = path.join(root, `many/d${Math.floor(index / 1000)}/f${index}`);
    const stats = statSync(file, { throwIfNoEntry: false });
    const expectedMode = index % 2 === 0 ? 0o644 : 0o700;
    if (
      !stats ||
      (stats.mode & 0o7777) !== expectedMode ||
      stats.uid !== index % 7 ||
      stats.gid !== index % 5 ||
      readFileSync(file, 'utf8') !== `file ${index}\n`
    )
      wrong.push(file);
  }
  t.deepEqual(wrong.slice(0, 5), []);
  t.is((await readdir(path.join(root, 'many'))).length, files / 1000);
  t.is((await stat(path.join(root, 'many/d7'))).mode & 0o7777, 0o750);
});
