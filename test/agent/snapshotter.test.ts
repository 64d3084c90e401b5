import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DirectorySnapshotter, type FileSystemFlush } from '../../runtime-agent/snapshot/snapshotter.js';

async function newRoot(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-snapshotter-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

function newLayer() {
  const hex = randomBytes(32).toString('hex');
  return { chainId: `sha256:${hex}`, diffId: `sha256:${hex}`, parent: undefined };
}

async function fillWithOneFile(directory: string): Promise<{ size: number }> {
  await writeFile(path.join(directory, 'hello.txt'), 'hello\n');
  return { size: 6 };
}

test('a snapshot is flushed to disk, files and record, before it appears under its chain id', async (t) => {
  const root = await newRoot(t);
  const layer = newLayer();
  const seenAtFlush: Array<{ flushed: string; files: string; record: boolean; visible: boolean; listed: number }> = [];
  const flush: FileSystemFlush = async (directory) => {
    seenAtFlush.push({
      flushed: path.dirname(directory),
      files: await readFile(path.join(directory, 'fs', 'hello.txt'), 'utf8'),
      record: existsSync(path.join(directory, 'snapshot.json')),
      visible: (await snapshots.info(layer.chainId)) !== undefined,
      listed: (await snapshots.list()).length,
    });
  };
  const snapshots = new DirectorySnapshotter(root, flush);
  await snapshots.init();

  t.deepEqual(await snapshots.create(layer, fillWithOneFile), { created: true });

  t.deepEqual(seenAtFlush, [{ flushed: root, files: 'hello\n', record: true, visible: false, listed: 0 }]);
  t.like(await snapshots.info(layer.chainId), { chainId: layer.chainId, size: 6 });
  t.is(await readFile(path.join(snapshots.filesPath(layer.chainId), 'hello.txt'), 'utf8'), 'hello\n');
});

test('a snapshot whose flush fails does not appear, and leaves no work directory behind', async (t) => {
  const root = await newRoot(t);
  const layer = newLayer();
  const snapshots = new DirectorySnapshotter(root, async () => {
    throw new Error('EIO: the disk went away');
  });
  await snapshots.init();

  await t.throwsAsync(snapshots.create(layer, fillWithOneFile), { message: /EIO/ });

  t.is(await snapshots.info(layer.chainId), undefined);
  t.deepEqual(await readdir(root), []);
});

test('the default flush (syncfs of the snapshot filesystem) creates a complete snapshot', async (t) => {
  const root = await newRoot(t);
  const layer = newLayer();
  const snapshots = new DirectorySnapshotter(root);
  await snapshots.init();

  t.deepEqual(await snapshots.create(layer, fillWithOneFile), { created: true });
  t.deepEqual(await snapshots.create(layer, fillWithOneFile), { created: false });
  t.is(await readFile(path.join(snapshots.filesPath(layer.chainId), 'hello.txt'), 'utf8'), 'hello\n');
});
