import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { FileContentStore } from '../../runtime-agent/content/content-store.js';
import { writeLayer } from '../../runtime-agent/build/layer-writer.js';
import { run } from '../helpers/exec.js';

/** A step that deletes files of a lower layer leaves overlay whiteouts in its upper directory: they become `.wh.` entries. */

async function entryNames(store: FileContentStore, digest: string): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(store.read(digest), createGunzip(), extract);
  return names;
}

test('an upper directory with whiteouts and an opaque directory becomes a layer with .wh. entries', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-layer-writer-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const upper = path.join(root, 'upper');
  await mkdir(path.join(upper, 'data', 'replaced'), { recursive: true });
  await writeFile(path.join(upper, 'data', 'replaced', 'new'), 'new\n');
  await run('mknod', [path.join(upper, 'data', 'gone'), 'c', '0', '0']);
  await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(upper, 'data', 'replaced')]);
  const store = new FileContentStore(path.join(root, 'content'));
  await store.init();

  const scratchFile = path.join(root, 'layer.tar.gz');
  const layer = await writeLayer(upper, store, { sourceDateEpoch: undefined, scratchFile, findOpaque: true });

  // Written once: the scratch file moved into the store, no copy of it left anywhere.
  t.false(existsSync(scratchFile));
  t.deepEqual(await store.list(), [{ digest: layer.digest, size: layer.size }]);
  t.deepEqual(await readdir(path.join(root, 'content', 'ingest')), []);

  t.deepEqual(await entryNames(store, layer.digest), [
    'data/',
    'data/.wh.gone',
    'data/replaced/',
    'data/replaced/.wh..wh..opq',
    'data/replaced/new',
  ]);
  t.deepEqual(
    layer.tree,
    { files: [{ relative: 'data/replaced/new', bytes: 4 }], directories: ['data', 'data/replaced'], opaque: ['data/replaced'] },
    'what the snapshot flushes, and which directories later lookups know as opaque without asking',
  );
});
