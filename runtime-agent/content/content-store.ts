import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { commitFile } from '../../platform/durable-file.js';
import { settleAll, SingleFlight } from '../support/concurrency.js';
import { ContentVerificationError, DigestingStream, digestOf, parseDigest, type DigestAlgorithm } from '../../oci/digest.js';
import { RegistryError } from '../registry/registry-error.js';

export interface BlobDescriptor {
  digest: string;
  size: number;
}

/** Where the bytes of a blob come from: a stream from `offset` on (see RegistryClient.fetchBlob). */
export type BlobSource = (offset: number) => Promise<{ stream: Readable; offset: number }>;

export interface IngestOptions {
  /** Called with the bytes on disk so far, including a resumed prefix. */
  onProgress?: (bytes: number) => void;
  /**
   * Given the downloaded blob once it is verified, while it is being flushed to disk and committed (a pull
   * unpacks it meanwhile instead of after); the ingest settles when both are done. Not called when the blob
   * was in the store already or another ingest of it was under way: read() it then.
   */
  whileCommitting?: (verified: Readable) => Promise<void>;
}

export interface IngestResult {
  /** False if the blob was already in the store (or another ingest of it just finished). */
  downloaded: boolean;
  /** Bytes of an earlier partial download that were kept instead of fetched again. */
  resumedFrom: number;
}

/** Blobs by digest, shared by all images; nothing is visible under its digest before it is verified. */
export interface ContentStore {
  has(digest: string): Promise<boolean>;
  /** A verified blob's bytes as a stream. */
  read(digest: string): Readable;
  /** A small verified blob (manifest, config) whole. */
  readSmall(digest: string): Promise<Buffer>;
  /** Stores bytes already in memory (a manifest), after checking them against the digest. */
  writeSmall(digest: string, bytes: Buffer): Promise<void>;
  /** Downloads a blob into the store, resuming a partial download and verifying size and digest while streaming. */
  ingest(descriptor: BlobDescriptor, source: BlobSource, options?: IngestOptions): Promise<IngestResult>;
  /**
   * Takes a complete file the caller wrote itself and digested while writing (a layer the builder made) into
   * the store under that digest: moved, not copied. The file is gone afterwards, stored or not.
   */
  adopt(descriptor: BlobDescriptor, file: string): Promise<void>;
  list(): Promise<Array<{ digest: string; size: number }>>;
  remove(digest: string): Promise<void>;
  /** Digests of downloads left unfinished (interrupted pulls). */
  listPartial(): Promise<string[]>;
  removePartial(digest: string): Promise<void>;
}

/** Separates a one-shot write's unique suffix from the digest in an ingest file's name. */
const SMALL_WRITE_MARK = '.write-';

/** Blobs are read a MiB at a time: a 16th of the calls (and chunks downstream) of the default 64 KiB. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Network failures are retried from where the partial file ends; a registry's HTTP error or bad content is not. */
const ATTEMPTS = 3;

/**
 * A content store in plain files: `blobs/<algorithm>/<hex>` for verified blobs and `ingest/<algorithm>-<hex>`
 * for downloads in progress. A download becomes visible by an atomic rename only after its whole content
 * (including a resumed prefix) hashed to the expected digest with exactly the expected size.
 */
export class FileContentStore implements ContentStore {
  private readonly blobsDir: string;
  private readonly ingestDir: string;
  private readonly ingests = new SingleFlight<IngestResult>();

  constructor(root: string) {
    this.blobsDir = path.join(root, 'blobs');
    this.ingestDir = path.join(root, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    await mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
  }

  async has(digest: string): Promise<boolean> {
    return (await stat(this.blobPath(digest)).catch(() => undefined))?.isFile() ?? false;
  }

  read(digest: string): Readable {
    return createReadStream(this.blobPath(digest), { highWaterMark: READ_CHUNK_BYTES });
  }

  readSmall(digest: string): Promise<Buffer> {
    return readFile(this.blobPath(digest));
  }

  async writeSmall(digest: string, bytes: Buffer): Promise<void> {
    const { algorithm } = parseDigest(digest);
    if (digestOf(bytes, algorithm) !== digest) throw new ContentVerificationError(`content does not match digest ${digest}`);
    // A rebuild with nothing changed makes the same config and manifest again: nothing to write or flush.
    if (await this.has(digest)) return;
    // Its own name: two writers of the same bytes (two builds making one config) must not share a file.
    const partial = `${this.partialPath(digest)}${SMALL_WRITE_MARK}${randomUUID()}`;
    try {
      await writeFile(partial, bytes);
      await this.commit(partial, digest);
    } finally {
      await rm(partial, { force: true });
    }
  }

  ingest(descriptor: BlobDescriptor, source: BlobSource, options: IngestOptions = {}): Promise<IngestResult> {
    const { promise, shared } = this.ingests.run(descriptor.digest, () => this.ingestWithRetries(descriptor, source, options));
    return shared ? promise.then((result) => ({ ...result, downloaded: false })) : promise;
  }

  async adopt(descriptor: BlobDescriptor, file: string): Promise<void> {
    const { size } = await stat(file);
    if (size !== descriptor.size) {
      await rm(file, { force: true });
      throw new ContentVerificationError(`${descriptor.digest}: the file has ${size} bytes, expected ${descriptor.size}`);
    }
    // The store's own directory: a rename there never crosses file systems.
    const partial = `${this.partialPath(descriptor.digest)}${SMALL_WRITE_MARK}${randomUUID()}`;
    try {
      await rename(file, partial).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EXDEV') throw error;
        await copyFile(file, partial);
      });
      await this.commit(partial, descriptor.digest);
    } finally {
      await rm(partial, { force: true });
      await rm(file, { force: true });
    }
  }

  async list(): Promise<Array<{ digest: string; size: number }>> {
    const blobs: Array<{ digest: string; size: number }> = [];
    for (const algorithm of await readdir(this.blobsDir)) {
      for (const hex of await readdir(path.join(this.blobsDir, algorithm))) {
        const { size } = await stat(path.join(this.blobsDir, algorithm, hex));
        blobs.push({ digest: `${algorithm}:${hex}`, size });
      }
    }
    return blobs;
  }

  async remove(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async listPartial(): Promise<string[]> {
    return (await readdir(this.ingestDir)).filter((name) => !name.includes(SMALL_WRITE_MARK)).map((name) => name.replace('-', ':'));
  }

  async removePartial(digest: string): Promise<void> {
    await rm(this.partialPath(digest), { force: true });
  }

  private async ingestWithRetries(descriptor: BlobDescriptor, source: BlobSource, options: IngestOptions): Promise<IngestResult> {
    if (await this.has(descriptor.digest)) return { downloaded: false, resumedFrom: 0 };
    for (let attempt = 1; ; attempt++) {
      const resumedFrom = await this.partialSize(descriptor);
      try {
        await this.download(descriptor, source, resumedFrom, options);
      } catch (error) {
        const badContent = error instanceof ContentVerificationError;
        if (badContent) await this.removePartial(descriptor.digest);
        // A bad resumed download may just have had a bad prefix on disk: one fresh try settles it.
        const retry = badContent ? resumedFrom > 0 : !(error instanceof RegistryError) && attempt < ATTEMPTS;
        if (!retry) throw error;
        continue;
      }
      // Outside the retries: what goes wrong from here on is this disk's or the reader's, not the download's.
      await this.commitWhileReading(this.partialPath(descriptor.digest), descriptor.digest, options.whileCommitting);
      return { downloaded: true, resumedFrom };
    }
  }

  /** The verified partial is opened before it is renamed: the reader's descriptor follows the file. */
  private async commitWhileReading(partial: string, digest: string, reader: IngestOptions['whileCommitting']): Promise<void> {
    if (!reader) return this.commit(partial, digest);
    const verified = (await open(partial, 'r')).createReadStream({ highWaterMark: READ_CHUNK_BYTES });
    try {
      await settleAll([this.commit(partial, digest), reader(verified)]);
    } finally {
      verified.destroy();
    }
  }

  private async download(descriptor: BlobDescriptor, source: BlobSource, offset: number, options: IngestOptions): Promise<void> {
    const { algorithm } = parseDigest(descriptor.digest);
    const partial = this.partialPath(descriptor.digest);
    // A partial as long as the blob only needs verifying; asking the registry for zero bytes would be a 416.
    const served = offset < descriptor.size ? await source(offset) : { stream: Readable.from([]), offset };
    const start = served.offset;
    if (start !== 0 && start !== offset) throw new ContentVerificationError(`registry resumed at ${start}, asked for ${offset}`);
    const counter = new DigestingStream(await hashOfPrefix(partial, algorithm, start), start, descriptor.size, options.onProgress);
    await pipeline(served.stream, counter, createWriteStream(partial, { flags: start > 0 ? 'r+' : 'w', start })).catch((error: Error) => {
      // The transport's own words ("terminated", "other side closed") say nothing of which blob or how far.
      throw new Error(`${descriptor.digest}: download interrupted at ${counter.bytes} of ${descriptor.size} bytes (${error.message})`);
    });
    if (counter.bytes !== descriptor.size) {
      throw new ContentVerificationError(`${descriptor.digest}: got ${counter.bytes} bytes, expected ${descriptor.size}`);
    }
    const actual = counter.digest(algorithm);
    if (actual !== descriptor.digest) throw new ContentVerificationError(`${descriptor.digest}: content hashes to ${actual}`);
  }

  private async partialSize(descriptor: BlobDescriptor): Promise<number> {
    const size = (await stat(this.partialPath(descriptor.digest)).catch(() => undefined))?.size ?? 0;
    return size <= descriptor.size ? size : 0;
  }

  /**
   * After a crash a blob under its digest must be that content, not zeros or nothing. Only verified bytes
   * ever reach a digest's name, so a blob already there is this content: another writer got there first.
   */
  private async commit(partial: string, digest: string): Promise<void> {
    if (await this.has(digest)) {
      await rm(partial, { force: true });
      return;
    }
    await commitFile(partial, this.blobPath(digest), { directoryMode: 0o700 }).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT' || !(await this.has(digest))) throw error;
    });
  }

  private blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.blobsDir, algorithm, hex);
  }

  private partialPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.ingestDir, `${algorithm}-${hex}`);
  }
}

/** The hash state after the first `length` bytes of a partial download, so resuming re-verifies the whole blob. */
async function hashOfPrefix(file: string, algorithm: DigestAlgorithm, length: number): Promise<Hash> {
  const hash = createHash(algorithm);
  if (length > 0) {
    for await (const chunk of createReadStream(file, { end: length - 1 })) hash.update(chunk as Buffer);
  }
  return hash;
}
