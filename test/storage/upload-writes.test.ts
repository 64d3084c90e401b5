import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { UploadHandle } from '../../server/storage/blob-store.js';
import { FilesystemBlobStore } from '../../server/storage/filesystem/filesystem-store.js';

// The filesystem store's upload writes on a real directory: request bodies arrive in 64 KiB pieces, as Node's
// HTTP parser delivers them, and are written while more arrive.
const KiB = 1024;
const MiB = 1024 * KiB;

let root: string;
let store: FilesystemBlobStore;

test.before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'berth-upload-writes-'));
  store = new FilesystemBlobStore(root);
  await store.init();
});

test.after.always(async () => {
  await rm(root, { recursive: true, force: true });
});

/** `total` bytes in 64 KiB pieces; fails with `failAfter` bytes sent when given. */
function body(total: number, failAfter?: number): { source: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  const source = new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        this.destroy(new Error('client went away'));
        return;
      }
      if (sent >= total) {
        this.push(null);
        return;
      }
      // Random bytes: a misplaced, repeated or lost piece changes the digest.
      const bytes = randomBytes(Math.min(64 * KiB, total - sent));
      sent += bytes.length;
      hash.update(bytes);
      this.push(bytes);
    },
  });
  return { source, sha256: () => hash.digest('hex') };
}

async function newUpload(): Promise<UploadHandle> {
  const id = `upload-${Math.random().toString(16).slice(2)}`;
  return { id, offset: 0, storeState: await store.createUpload(id) };
}

const ignore = () => undefined;
const uploadFile = (upload: UploadHandle) => path.join(root, 'uploads', upload.id);
const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('a 40 MiB body, past every write queue and flush bound, is stored byte-identical in order, and seen whole and in order by its receiver', async (t) => {
  const upload = await newUpload();
  const { source, sha256 } = body(40 * MiB + 123);
  const seen = createHash('sha256');
  const { written } = await store.writeUpload(upload, source, (chunk) => seen.update(chunk));
  t.is(written, 40 * MiB + 123);
  const stored = await readFile(uploadFile(upload));
  t.is(stored.length, written);
  t.is(sha256Of(stored), sha256());
  t.is(seen.digest('hex'), sha256Of(stored));
});

test('a chunk after a crash that left bytes past the recorded offset replaces them from that offset', async (t) => {
  const upload = await newUpload();
  const first = await store.writeUpload(upload, body(3 * MiB).source, ignore);
  // The crash: the bytes of an unacknowledged chunk reached the file, its offset was never recorded.
  const recorded = { ...upload, offset: 2 * MiB };
  const next = body(MiB + 5);
  const { written } = await store.writeUpload(recorded, next.source, ignore);
  t.is(first.written, 3 * MiB);
  t.is(written, MiB + 5);
  const stored = await readFile(uploadFile(upload));
  t.is(stored.length, 3 * MiB + 5);
  t.is(sha256Of(stored.subarray(2 * MiB)), next.sha256());
});

test('a chunk for an upload whose stored bytes are shorter than its recorded offset is refused and pads nothing with zeros', async (t) => {
  const upload = await newUpload();
  await store.writeUpload(upload, body(2 * MiB).source, ignore);
  await truncate(uploadFile(upload), MiB);
  const error = await t.throwsAsync(store.writeUpload({ ...upload, offset: 2 * MiB }, body(MiB).source, ignore));
  t.true(error instanceof CodedError && error.errorCode === DistributionErrors.BLOB_UPLOAD_INVALID, String(error));
  t.is((await stat(uploadFile(upload))).size, MiB);
});

test('a body that fails mid-way rejects the write, and the upload can be written again from its offset', async (t) => {
  const upload = await newUpload();
  await t.throwsAsync(store.writeUpload(upload, body(20 * MiB, 10 * MiB).source, ignore), { message: /client went away/ });
  // Nothing of the failed write is still running: the retry's bytes are the only ones in the file.
  const retry = body(3 * MiB);
  t.is((await store.writeUpload(upload, retry.source, ignore)).written, 3 * MiB);
  const stored = await readFile(uploadFile(upload));
  t.is(stored.length, 3 * MiB);
  t.is(sha256Of(stored), retry.sha256());
});
