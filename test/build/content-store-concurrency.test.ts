import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { digestOf } from '../../oci/digest.js';
import { FileContentStore } from '../../runtime-agent/content/content-store.js';

/** Two builds at once often make the same config, manifest or layer: every writer must succeed and leave one blob. */

const WRITERS = 16;

async function freshStore(t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ store: FileContentStore; root: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-content-race-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const store = new FileContentStore(root);
  await store.init();
  return { store, root };
}

test('concurrent writers of the same small blob all succeed and the store holds it once, with no leftovers', async (t) => {
  const { store, root } = await freshStore(t);
  const bytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const digest = digestOf(bytes);
  const results = await Promise.allSettled(Array.from({ length: WRITERS }, () => store.writeSmall(digest, bytes)));
  t.deepEqual(
    results.filter((result) => result.status === 'rejected').map((result) => String(result.reason)),
    [],
  );
  t.deepEqual(await store.readSmall(digest), bytes);
  t.deepEqual(await store.list(), [{ digest, size: bytes.length }]);
  t.deepEqual(await readdir(path.join(root, 'ingest')), []);
  t.deepEqual(await store.listPartial(), []);
});

test('a small write and a streamed ingest of the same blob at once both succeed', async (t) => {
  const { store } = await freshStore(t);
  const bytes = Buffer.alloc(256 * 1024, 'layer bytes ');
  const digest = digestOf(bytes);
  const source = (offset: number) => Promise.resolve({ stream: Readable.from([bytes.subarray(offset)]), offset });
  const writes = Array.from({ length: WRITERS }, (_, index) =>
    index % 2 === 0 ? store.writeSmall(digest, bytes) : store.ingest({ digest, size: bytes.length }, source),
  );
  const results = await Promise.allSettled(writes);
  t.deepEqual(
    results.filter((result) => result.status === 'rejected').map((result) => String(result.reason)),
    [],
  );
  t.deepEqual(await store.readSmall(digest), bytes);
  t.deepEqual(await store.listPartial(), []);
});

test('writing a blob that is already stored leaves it in place and succeeds', async (t) => {
  const { store } = await freshStore(t);
  const bytes = Buffer.from('{"schemaVersion":2}');
  const digest = digestOf(bytes);
  await store.writeSmall(digest, bytes);
  await store.writeSmall(digest, bytes);
  t.deepEqual(await store.list(), [{ digest, size: bytes.length }]);
});

test('a layer the builder wrote is moved into the store, not copied; a file of the wrong size is refused and removed', async (t) => {
  const { store, root } = await freshStore(t);
  const bytes = Buffer.alloc(64 * 1024, 'built layer ');
  const digest = digestOf(bytes);
  const file = path.join(root, 'scratch.tar.gz');
  await writeFile(file, bytes);
  const { ino } = await stat(file);
  await store.adopt({ digest, size: bytes.length }, file);
  t.is((await stat(path.join(root, 'blobs', 'sha256', digest.slice('sha256:'.length)))).ino, ino);
  t.false(existsSync(file));
  t.deepEqual(await readdir(path.join(root, 'ingest')), []);

  const short = path.join(root, 'short.tar.gz');
  await writeFile(short, bytes.subarray(1));
  const other = digestOf(bytes.subarray(1));
  await t.throwsAsync(store.adopt({ digest: other, size: bytes.length }, short), { message: /has 65535 bytes, expected 65536/ });
  t.false(existsSync(short));
  t.false(await store.has(other));
});
