import { close, closeSync, constants, fsync } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { runHostCommand } from '../support/host-command.js';
import type { WrittenFiles } from '../unpack/layer-applier.js';

const fsyncAsync = promisify(fsync);
const closeAsync = promisify(close);

/** The disk operations a snapshot's flush is made of; tests give their own to see what is flushed, and when. */
export interface DiskFlush {
  /** fsync(2) of an open file, in the thread pool. */
  file(fd: number): Promise<void>;
  /** fsync(2) of a directory or a file by path; a path a later entry removed or replaced by a symlink is skipped. */
  path(target: string): Promise<void>;
  /** syncfs(2) of the filesystem holding `target`: everything written on it, other writers' pages included. */
  fileSystem(target: string): Promise<void>;
}

export const hostDiskFlush: DiskFlush = {
  file: (fd) => fsyncAsync(fd),
  path: syncPathIfPresent,
  // coreutils' `sync --file-system`: Node has no binding for syncfs(2).
  fileSystem: async (target) => void (await runHostCommand('sync', ['--file-system', target])),
};

/** A thread-pool slot for one flush: shared by every snapshot being made, so flushes never take the whole pool from downloads. */
export type FlushSlot = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * Below this size a file is "small": flushing thousands of them one by one costs a journal commit each
 * (20,000 files of 200 bytes: 13-23 s with four at a time, against 2-10 s for writing them and one syncfs).
 */
const SMALL_FILE_BYTES = 1024 * 1024;
/** Past this many small files a snapshot is flushed by one syncfs instead (they break even around here). */
const SMALL_FILES_FLUSHED_ONE_BY_ONE = 256;

/**
 * Puts one snapshot's files on disk, rather than flushing the whole filesystem: each large file is fsynced
 * (then closed) in the thread pool as the fill hands it over, while the fill goes on; at the end the small
 * files and every directory the fill created are fsynced, so the names in them stay. A fill of many small
 * files gets one syncfs at the end instead.
 */
export class SnapshotFlush implements WrittenFiles {
  private readonly flushing = new Set<Promise<void>>();
  private readonly directories: string[] = [];
  /** Small files to flush by path at the end: not one by one as they close, since most may turn out to be many. */
  private smallFiles: string[] = [];
  private wholeFileSystem = false;
  private failure: unknown;

  constructor(
    private readonly disk: DiskFlush,
    private readonly slot: FlushSlot,
  ) {}

  /** Resolves once a large file's flush has started (a slot was free), so a fill is held back by a slow disk. */
  closeFile(fd: number, file: string, bytes: number): Promise<void> {
    if (bytes < SMALL_FILE_BYTES) {
      closeSync(fd);
      this.smallFileClosed(file);
      return Promise.resolve();
    }
    return this.flushLarge(async () => {
      try {
        await this.disk.file(fd);
      } finally {
        await closeAsync(fd);
      }
    });
  }

  fileInPlace(file: string, bytes: number): void {
    if (bytes < SMALL_FILE_BYTES) this.smallFileClosed(file);
    else void this.flushLarge(() => this.disk.path(file));
  }

  directoryCreated(directory: string): void {
    this.directories.push(directory);
  }

  /**
   * Waits for every large file's flush, then flushes the small files, the directories the fill created and
   * `written` (what the snapshotter wrote around the fill, its work directory last), or the whole
   * filesystem. Fails with the first failed flush: the snapshot must not appear then.
   */
  async complete(written: string[]): Promise<void> {
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
    if (this.wholeFileSystem) return this.disk.fileSystem(written[0] as string);
    const paths = [...this.smallFiles, ...this.directories, ...written];
    const outcomes = await Promise.allSettled(paths.map((target) => this.slot(() => this.disk.path(target))));
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Waits for the flushes under way (each closes its file), after a fill failed too. */
  async settle(): Promise<void> {
    while (this.flushing.size > 0) await Promise.all(this.flushing);
  }

  /** Starts a large file's flush in a slot; resolves once it has started. A failure fails `complete`. */
  private flushLarge(flush: () => Promise<void>): Promise<void> {
    return new Promise((started) => {
      const flushed = this.slot(async () => {
        started();
        await flush();
      }).catch((error: unknown) => {
        this.failure ??= error;
      });
      this.flushing.add(flushed);
      void flushed.then(() => this.flushing.delete(flushed));
    });
  }

  private smallFileClosed(file: string): void {
    if (this.wholeFileSystem) return;
    this.smallFiles.push(file);
    if (this.smallFiles.length <= SMALL_FILES_FLUSHED_ONE_BY_ONE) return;
    this.wholeFileSystem = true;
    this.smallFiles = [];
  }
}

/** What opening a path a later entry removed, or replaced by a symlink or a whiteout device, fails with. */
const REPLACED_PATH_ERRORS = new Set(['ENOENT', 'ELOOP', 'ENXIO', 'ENODEV', 'ENOTDIR']);

/** fsync by path, never following a symlink: a later entry may have replaced a directory with one. */
async function syncPathIfPresent(target: string): Promise<void> {
  const handle = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
    if (REPLACED_PATH_ERRORS.has(error.code ?? '')) return undefined;
    throw error;
  });
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
