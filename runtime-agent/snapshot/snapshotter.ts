import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { concurrencyLimit, SingleFlight } from '../support/concurrency.js';
import type { WrittenFiles } from '../unpack/layer-applier.js';
import { syncPath } from '../../platform/durable-file.js';
import { parseDigest } from '../../oci/digest.js';
import { hostDiskFlush, SnapshotFlush, type DiskFlush } from './snapshot-flush.js';

/** One unpacked layer on top of its exact parents, usable as an overlayfs lowerdir. */
export interface SnapshotInfo {
  chainId: string;
  diffId: string;
  parent: string | undefined;
  /** Bytes of the uncompressed layer tar. */
  size: number;
  createdAt: string;
}

export interface Snapshotter {
  info(chainId: string): Promise<SnapshotInfo | undefined>;
  /** The directory holding the snapshot's files (its lowerdir). */
  filesPath(chainId: string): string;
  /**
   * Creates the snapshot by letting `fill` write into an empty directory, unless it exists; concurrent
   * calls for one chain id share one fill. Either the whole snapshot appears or none, and it appears with
   * its files on disk: a crash after it does not leave files short or empty under a complete snapshot.
   */
  create(info: Omit<SnapshotInfo, 'size' | 'createdAt'>, fill: SnapshotFill): Promise<{ created: boolean }>;
  list(): Promise<SnapshotInfo[]>;
  remove(chainId: string): Promise<void>;
  /** Removes what a crash or failed unpack left half-written. */
  removeIncomplete(): Promise<number>;
}

/**
 * What a fill is told to hand over as it writes: every regular file it finishes and every directory it
 * makes, which are then flushed to disk before the snapshot appears. A fill that moves a finished tree into
 * place (a build step's upper directory) names its regular files with `fileInPlace` and its directories
 * with `directoryCreated`.
 */
export interface SnapshotFiles extends WrittenFiles {
  /** A regular file of `bytes` the fill put in place already written and closed. */
  fileInPlace(file: string, bytes: number): void;
}

export type SnapshotFill = (directory: string, files: SnapshotFiles) => Promise<{ size: number }>;

const INFO_FILE = 'snapshot.json';
const FILES_DIR = 'fs';
const INCOMPLETE_PREFIX = '.incomplete-';

/**
 * File flushes at once over all snapshots being made: each holds one of the thread pool's four threads,
 * which downloads, decompression and the unpacker's writes need too.
 */
const FLUSHES_AT_ONCE = 2;

/**
 * Snapshots as directories `<root>/<algorithm>-<hex>/{fs,snapshot.json}`. A snapshot is filled in a
 * `.incomplete-*` directory, flushed to disk (its own files: see SnapshotFlush), and renamed into place,
 * and removed by renaming it away first, so a crash never leaves a half snapshot under its chain id. Nothing checks a snapshot's files
 * again after a crash (the image that uses it is complete once its record is): the flush before the
 * rename is what keeps them whole.
 */
export class DirectorySnapshotter implements Snapshotter {
  private readonly creations = new SingleFlight<{ created: boolean }>();
  /** Work directories of creations in progress, which a sweep must leave alone. */
  private readonly working = new Set<string>();
  private readonly flushSlot = concurrencyLimit(FLUSHES_AT_ONCE);

  constructor(
    private readonly root: string,
    private readonly disk: DiskFlush = hostDiskFlush,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  async info(chainId: string): Promise<SnapshotInfo | undefined> {
    const text = await readFile(path.join(this.snapshotPath(chainId), INFO_FILE), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as SnapshotInfo);
  }

  filesPath(chainId: string): string {
    return path.join(this.snapshotPath(chainId), FILES_DIR);
  }

  create(info: Omit<SnapshotInfo, 'size' | 'createdAt'>, fill: SnapshotFill): Promise<{ created: boolean }> {
    const { promise, shared } = this.creations.run(info.chainId, () => this.createOnce(info, fill));
    return shared ? promise.then(() => ({ created: false })) : promise;
  }

  async list(): Promise<SnapshotInfo[]> {
    const snapshots: SnapshotInfo[] = [];
    for (const name of await readdir(this.root)) {
      if (name.startsWith('.')) continue;
      const info = await this.info(chainIdOf(name));
      if (info) snapshots.push(info);
    }
    return snapshots;
  }

  async remove(chainId: string): Promise<void> {
    const doomed = this.incompletePath();
    await rename(this.snapshotPath(chainId), doomed).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rm(doomed, { recursive: true, force: true });
  }

  async removeIncomplete(): Promise<number> {
    const leftovers = (await readdir(this.root)).filter(
      (name) => name.startsWith(INCOMPLETE_PREFIX) && !this.working.has(path.join(this.root, name)),
    );
    for (const name of leftovers) await rm(path.join(this.root, name), { recursive: true, force: true });
    return leftovers.length;
  }

  private async createOnce(info: Omit<SnapshotInfo, 'size' | 'createdAt'>, fill: SnapshotFill): Promise<{ created: boolean }> {
    if (await this.info(info.chainId)) return { created: false };
    const work = this.incompletePath();
    const files = path.join(work, FILES_DIR);
    const record = path.join(work, INFO_FILE);
    const flush = new SnapshotFlush(this.disk, this.flushSlot);
    this.working.add(work);
    try {
      await mkdir(files, { recursive: true, mode: 0o755 });
      const { size } = await fill(files, flush).finally(() => flush.settle());
      const complete: SnapshotInfo = { ...info, size, createdAt: new Date().toISOString() };
      await writeFile(record, JSON.stringify(complete, null, 2));
      await flush.complete([files, record, work]);
      await rename(work, this.snapshotPath(info.chainId));
      // The rename on disk before anything (an image record) names the snapshot.
      await syncPath(this.root);
      return { created: true };
    } catch (error) {
      await rm(work, { recursive: true, force: true });
      throw error;
    } finally {
      this.working.delete(work);
    }
  }

  private snapshotPath(chainId: string): string {
    const { algorithm, hex } = parseDigest(chainId);
    return path.join(this.root, `${algorithm}-${hex}`);
  }

  private incompletePath(): string {
    return path.join(this.root, `${INCOMPLETE_PREFIX}${randomBytes(8).toString('hex')}`);
  }
}

function chainIdOf(directoryName: string): string {
  return directoryName.replace('-', ':');
}
