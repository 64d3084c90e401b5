import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SingleFlight } from '../support/concurrency.js';
import { runHostCommand } from '../support/host-command.js';
import { syncPath } from '../../platform/durable-file.js';
import { parseDigest } from '../../oci/digest.js';

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
  create(
    info: Omit<SnapshotInfo, 'size' | 'createdAt'>,
    fill: (directory: string) => Promise<{ size: number }>,
  ): Promise<{ created: boolean }>;
  list(): Promise<SnapshotInfo[]>;
  remove(chainId: string): Promise<void>;
  /** Removes what a crash or failed unpack left half-written. */
  removeIncomplete(): Promise<number>;
}

const INFO_FILE = 'snapshot.json';
const FILES_DIR = 'fs';
const INCOMPLETE_PREFIX = '.incomplete-';

/** Flushes everything written on the filesystem that holds `directory` to disk. */
export type FileSystemFlush = (directory: string) => Promise<void>;

/**
 * syncfs(2), through coreutils' `sync --file-system` (Node has no binding): one flush of the filesystem
 * instead of an fsync per file and directory, each its own journal commit, for the thousands a layer can hold.
 */
export const syncFileSystem: FileSystemFlush = async (directory) => {
  await runHostCommand('sync', ['--file-system', directory]);
};

/**
 * Snapshots as directories `<root>/<algorithm>-<hex>/{fs,snapshot.json}`. A snapshot is filled in a
 * `.incomplete-*` directory, flushed to disk, and renamed into place, and removed by renaming it away
 * first, so a crash never leaves a half snapshot under its chain id. Nothing checks a snapshot's files
 * again after a crash (the image that uses it is complete once its record is): the flush before the
 * rename is what keeps them whole.
 */
export class DirectorySnapshotter implements Snapshotter {
  private readonly creations = new SingleFlight<{ created: boolean }>();
  /** Work directories of creations in progress, which a sweep must leave alone. */
  private readonly working = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly flush: FileSystemFlush = syncFileSystem,
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

  create(
    info: Omit<SnapshotInfo, 'size' | 'createdAt'>,
    fill: (directory: string) => Promise<{ size: number }>,
  ): Promise<{ created: boolean }> {
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

  private async createOnce(
    info: Omit<SnapshotInfo, 'size' | 'createdAt'>,
    fill: (directory: string) => Promise<{ size: number }>,
  ): Promise<{ created: boolean }> {
    if (await this.info(info.chainId)) return { created: false };
    const work = this.incompletePath();
    this.working.add(work);
    try {
      await mkdir(path.join(work, FILES_DIR), { recursive: true, mode: 0o755 });
      const { size } = await fill(path.join(work, FILES_DIR));
      const complete: SnapshotInfo = { ...info, size, createdAt: new Date().toISOString() };
      await writeFile(path.join(work, INFO_FILE), JSON.stringify(complete, null, 2));
      await this.flush(work);
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
