import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { layerOf, type Layer, type TarEntry } from '../helpers/agent-images.js';
import { run } from '../helpers/exec.js';
import { movedUpperFill, writeLayer } from '../../runtime-agent/build/layer-writer.js';
import { FileContentStore } from '../../runtime-agent/content/content-store.js';
import { hostDiskFlush, type DiskFlush } from '../../runtime-agent/snapshot/snapshot-flush.js';
import { DirectorySnapshotter, type SnapshotFill } from '../../runtime-agent/snapshot/snapshotter.js';
import { unpackLayer } from '../../runtime-agent/unpack/layer-unpacker.js';

async function newRoot(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-snapshotter-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A fill that unpacks `layer` as a pull does. */
function unpacking(layer: Layer): SnapshotFill {
  return (directory, files) =>
    unpackLayer(
      { ...layer, blob: Readable.from([layer.blob]) },
      directory,
      { keepSetid: false, preserveOwnership: true, warn: () => undefined },
      files,
    );
}

interface Flushed {
  /** Relative to the snapshot's work directory (`fs/...`, `snapshot.json`, `.` for the work directory itself). */
  path: string;
  /** sha256 of a regular file's bytes at the moment it was flushed. */
  content?: string;
  visible: boolean;
}

/**
 * The host's flushes, recording what each one flushed and whether the snapshot could already be seen. A
 * file is named by its descriptor, as the kernel sees it.
 */
function recordingDisk(root: string, chainId: string, failFile?: RegExp): { disk: DiskFlush; flushed: Flushed[]; fileSystems: Flushed[] } {
  const flushed: Flushed[] = [];
  const fileSystems: Flushed[] = [];
  const visible = () => existsSync(path.join(root, chainId.replace(':', '-')));
  const relative = (target: string) => {
    const work = readdirSync(root).find((name) => name.startsWith('.incomplete-'));
    return path.relative(path.join(root, work ?? ''), target) || '.';
  };
  const disk: DiskFlush = {
    file: async (fd) => {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (failFile?.test(target)) throw new Error(`EIO: i/o error, fsync of ${target}`);
      flushed.push({ path: relative(target), content: sha256(readFileSync(target)), visible: visible() });
      await hostDiskFlush.file(fd);
    },
    path: async (target) => {
      const content = lstatSync(target).isFile() ? sha256(readFileSync(target)) : undefined;
      flushed.push({ path: relative(target), ...(content ? { content } : {}), visible: visible() });
      await hostDiskFlush.path(target);
    },
    fileSystem: async (target) => {
      fileSystems.push({ path: relative(target), visible: visible() });
      await hostDiskFlush.fileSystem(target);
    },
  };
  return { disk, flushed, fileSystems };
}

/** A snapshotter on the recording disk, and a layer of `entries` to unpack into it under a fresh chain id. */
async function recordedUnpack(
  t: { teardown(fn: () => Promise<void>): void },
  entries: TarEntry[],
  compression: 'gzip' | 'none',
  failFile?: RegExp,
) {
  const root = await newRoot(t);
  const layer = await layerOf(entries, compression);
  const info = { chainId: `sha256:${sha256(randomBytes(8))}`, diffId: layer.diffId, parent: undefined };
  const recorded = recordingDisk(root, info.chainId, failFile);
  const snapshots = new DirectorySnapshotter(root, recorded.disk);
  await snapshots.init();
  return { root, layer, info, snapshots, ...recorded };
}

test('an unpacked snapshot flushes each of its files whole, then its directories and record, before it appears; no syncfs', async (t) => {
  const big = randomBytes(3 * 1024 * 1024 + 5);
  const entries: TarEntry[] = [
    { name: 'etc/', type: 'directory' },
    { name: 'etc/os-release', content: 'NAME=test\n' },
    { name: 'usr/lib/big.so', content: big, mode: 0o755 },
    { name: 'usr/bin/tool', type: 'symlink', linkname: '../lib/big.so' },
    { name: 'usr/lib/hard.so', type: 'link', linkname: 'usr/lib/big.so' },
  ];
  const { layer, info, snapshots, flushed, fileSystems } = await recordedUnpack(t, entries, 'gzip');

  t.deepEqual(await snapshots.create(info, unpacking(layer)), { created: true });

  const byPath = new Map(flushed.map((entry) => [entry.path, entry]));
  t.is(byPath.size, flushed.length, 'nothing is flushed twice');
  t.deepEqual(
    [...byPath.keys()].sort(),
    ['.', 'fs', 'fs/etc', 'fs/etc/os-release', 'fs/usr', 'fs/usr/bin', 'fs/usr/lib', 'fs/usr/lib/big.so', 'snapshot.json'].sort(),
  );
  t.is(byPath.get('fs/usr/lib/big.so')?.content, sha256(big));
  t.is(byPath.get('fs/etc/os-release')?.content, sha256(Buffer.from('NAME=test\n')));
  t.true(
    flushed.every((entry) => !entry.visible),
    'every flush is done before the snapshot appears',
  );
  t.is(flushed.at(-1)?.path, '.', 'the work directory, which names the record, last');
  t.deepEqual(fileSystems, []);
  t.true((await readFile(path.join(snapshots.filesPath(info.chainId), 'usr/bin/tool'))).equals(big));
});

test('a layer of more small files than are flushed one by one is flushed by one syncfs, before it appears', async (t) => {
  const entries: TarEntry[] = Array.from({ length: 300 }, (_, index) => ({ name: `many/f${index}`, content: `file ${index}\n` }));
  const { layer, info, snapshots, flushed, fileSystems } = await recordedUnpack(t, entries, 'gzip');

  t.deepEqual(await snapshots.create(info, unpacking(layer)), { created: true });

  t.deepEqual(fileSystems, [{ path: 'fs', visible: false }]);
  t.deepEqual(flushed, [], 'no small file was flushed on its own first');
  t.is(await readFile(path.join(snapshots.filesPath(info.chainId), 'many/f299'), 'utf8'), 'file 299\n');
});

/** A build step's upper directory with `smallFiles` small files, a 2 MiB one, a symlink and a whiteout, packed as its layer. */
async function packedUpper(root: string, smallFiles: number) {
  const upper = path.join(root, 'upper');
  await mkdir(path.join(upper, 'app', 'src'), { recursive: true });
  for (let index = 0; index < smallFiles; index += 1) await writeFile(path.join(upper, 'app', 'src', `f${index}.txt`), `file ${index}\n`);
  const big = randomBytes(2 * 1024 * 1024);
  await writeFile(path.join(upper, 'app', 'big.bin'), big);
  await symlink('big.bin', path.join(upper, 'app', 'link'));
  await run('mknod', [path.join(upper, 'app', 'gone'), 'c', '0', '0']);
  const store = new FileContentStore(path.join(root, 'content'));
  await store.init();
  const layer = await writeLayer(upper, store, {
    sourceDateEpoch: undefined,
    scratchFile: path.join(root, 'layer.tar.gz'),
    findOpaque: true,
  });
  return { upper, big, layer, info: { chainId: `sha256:${sha256(randomBytes(8))}`, diffId: layer.diffId, parent: undefined } };
}

test("a build step's upper directory moved into a snapshot flushes its own files and directories before it appears; no syncfs", async (t) => {
  const root = await newRoot(t);
  const { upper, big, layer, info } = await packedUpper(root, 3);
  const snapshotsRoot = path.join(root, 'snapshots');
  const { disk, flushed, fileSystems } = recordingDisk(snapshotsRoot, info.chainId);
  const snapshots = new DirectorySnapshotter(snapshotsRoot, disk);
  await snapshots.init();

  t.deepEqual(await snapshots.create(info, movedUpperFill(upper, layer)), { created: true });

  t.deepEqual(fileSystems, []);
  const byPath = new Map(flushed.map((entry) => [entry.path, entry]));
  t.deepEqual(
    [...byPath.keys()].sort(),
    [
      '.',
      'fs',
      'fs/app',
      'fs/app/big.bin',
      'fs/app/src',
      'fs/app/src/f0.txt',
      'fs/app/src/f1.txt',
      'fs/app/src/f2.txt',
      'snapshot.json',
    ].sort(),
  );
  t.is(byPath.get('fs/app/big.bin')?.content, sha256(big));
  t.is(byPath.get('fs/app/src/f2.txt')?.content, sha256(Buffer.from('file 2\n')));
  t.true(
    flushed.every((entry) => !entry.visible),
    'every flush is done before the snapshot appears',
  );
  t.is(flushed.at(-1)?.path, '.');
  t.is(await readFile(path.join(snapshots.filesPath(info.chainId), 'app/link'), 'utf8'), big.toString('utf8'));
  t.false(existsSync(upper), 'the upper directory was moved, not copied');
});

test("a build step's upper directory of more small files than are flushed one by one is flushed by one syncfs before it appears", async (t) => {
  const root = await newRoot(t);
  const { upper, layer, info } = await packedUpper(root, 300);
  const snapshotsRoot = path.join(root, 'snapshots');
  const { disk, flushed, fileSystems } = recordingDisk(snapshotsRoot, info.chainId);
  const snapshots = new DirectorySnapshotter(snapshotsRoot, disk);
  await snapshots.init();

  await snapshots.create(info, movedUpperFill(upper, layer));

  t.deepEqual(fileSystems, [{ path: 'fs', visible: false }]);
  t.deepEqual(
    flushed.map((entry) => entry.path),
    ['fs/app/big.bin'],
    'only the large file was flushed on its own',
  );
  t.is(await readFile(path.join(snapshots.filesPath(info.chainId), 'app/src/f299.txt'), 'utf8'), 'file 299\n');
});

test('a snapshot one of whose file flushes fails does not appear, leaves no work directory, and keeps no file open', async (t) => {
  const entries: TarEntry[] = [
    { name: 'a.bin', content: randomBytes(2 * 1024 * 1024) },
    { name: 'b.txt', content: 'b\n' },
  ];
  const { root, layer, info, snapshots } = await recordedUnpack(t, entries, 'none', /a\.bin$/);

  await t.throwsAsync(snapshots.create(info, unpacking(layer)), { message: /EIO/ });

  t.is(await snapshots.info(info.chainId), undefined);
  t.deepEqual(await readdir(root), []);
  const open = (await readdir('/proc/self/fd')).map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
  t.deepEqual(
    open.filter((target) => target.startsWith(root)),
    [],
  );
});

test("the host's flush creates a complete snapshot of the layer's bytes", async (t) => {
  const root = await newRoot(t);
  const big = randomBytes(2 * 1024 * 1024);
  const layer = await layerOf(
    [
      { name: 'big.bin', content: big },
      { name: 'hello.txt', content: 'hello\n' },
    ],
    'gzip',
  );
  const info = { chainId: `sha256:${sha256(randomBytes(8))}`, diffId: layer.diffId, parent: undefined };
  const snapshots = new DirectorySnapshotter(root);
  await snapshots.init();

  t.deepEqual(await snapshots.create(info, unpacking(layer)), { created: true });
  t.deepEqual(await snapshots.create(info, unpacking(layer)), { created: false });
  t.true((await readFile(path.join(snapshots.filesPath(info.chainId), 'big.bin'))).equals(big));
  t.is(await readFile(path.join(snapshots.filesPath(info.chainId), 'hello.txt'), 'utf8'), 'hello\n');
});
