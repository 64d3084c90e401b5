import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  write,
  writeSync,
} from 'node:fs';
import { chmod, link, lstat, lutimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { LayerFormatError } from './decompression.js';
import { createWhiteout, markOpaque, OPAQUE_MARKER, WHITEOUT_PREFIX } from './overlay-whiteouts.js';
import { archivePathComponents, existingPathInside, LayerDirectories, UnsafePathError } from './rooted-path.js';
import { checkSegments, InDataSparseMap, sparseLayout, type SparseLayout, type SparseSegment } from './sparse-entries.js';

export interface ApplyOptions {
  /** Keep setuid/setgid bits; off by default so a pulled image cannot plant a privileged binary unasked. */
  keepSetid: boolean;
  /** Apply the tar's uid/gid; only root can, and only root should. */
  preserveOwnership: boolean;
  warn: (message: string) => void;
}

const SETID_BITS = 0o6000;
/** `.wh..wh.*` names other than the opaque marker are aufs bookkeeping (e.g. hardlink dirs) with no meaning for overlayfs. */
const AUFS_METADATA_PREFIX = `${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`;
/** Written with O_NOFOLLOW and O_EXCL: an existing symlink at the path was removed first and must not be reused. */
const NEW_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/**
 * Files from this size on are written through the thread pool: a synchronous write of a large file blocks the
 * event loop for as long as the page cache makes it wait, and with it the pull's other downloads.
 */
const ASYNC_WRITE_BYTES = 1024 * 1024;
const writeAsync = promisify(write);

/**
 * What the applier hands over as it makes files and directories: a snapshot flushes them to disk (and
 * must hear of every one), a copy into a container or a build context only closes its files.
 */
export interface WrittenFiles {
  /** Takes over a regular file (`fd`, open at `file`) whose content, owner, mode and times are written, and closes it. */
  closeFile(fd: number, file: string, bytes: number): Promise<void>;
  directoryCreated(directory: string): void;
}

export const unflushedFiles: WrittenFiles = {
  closeFile: async (fd) => closeSync(fd),
  directoryCreated: () => undefined,
};

/**
 * Writes an uncompressed layer tar into `root`, an empty directory, turning OCI whiteouts into overlayfs
 * form. Every entry stays inside `root`: paths are confined lexically, parents are never symlinks, hardlinks
 * only point at entries of this layer, and device nodes are not created.
 */
export async function applyLayerTar(
  tarStream: Readable,
  root: string,
  options: ApplyOptions,
  files: WrittenFiles = unflushedFiles,
): Promise<void> {
  const extract = tar.extract();
  const feeding = pipeline(tarStream, extract);
  try {
    await applyArchiveEntries(extract, root, options, files);
    await feeding;
  } catch (error) {
    extract.destroy(error as Error);
    await feeding.catch(() => undefined);
    throw error;
  }
}

/** An entry as tar-stream's extract yields it: the header, its content, and resume() to skip what is not read. */
export interface ArchiveEntry extends AsyncIterable<unknown> {
  header: Header;
  resume(): unknown;
}

/**
 * applyLayerTar's work on entries already parsed, for a caller that renames or filters them first (cp):
 * each entry's content is read (or skipped) before the next is asked for, then directory attributes are set.
 */
export async function applyArchiveEntries(
  entries: AsyncIterable<ArchiveEntry>,
  root: string,
  options: ApplyOptions,
  files: WrittenFiles = unflushedFiles,
): Promise<void> {
  const applier = new EntryApplier(root, options, files);
  for await (const entry of entries) {
    await applier.apply(entry.header, entry);
    entry.resume();
  }
  await applier.applyDirectoryAttributes();
}

interface DeferredDirectory {
  components: string[];
  mode: number;
  mtime: Date | undefined;
}

/**
 * Applies entries one at a time. Metadata and small writes are synchronous calls: per entry they cost a few
 * tens of microseconds, where each awaited fs promise costs a thread-pool round trip (a 100,000-file layer
 * took minutes that way). The event loop still turns between entries, as tar-stream yields them.
 */
class EntryApplier {
  /** Directory modes and times are set last: a read-only directory must still take its entries, and writing entries changes its mtime. */
  private readonly directories: DeferredDirectory[] = [];
  private readonly parents: LayerDirectories;

  constructor(
    private readonly root: string,
    private readonly options: ApplyOptions,
    private readonly files: WrittenFiles,
  ) {
    this.parents = new LayerDirectories(root, (directory) => files.directoryCreated(directory));
  }

  async apply(header: Header, content: AsyncIterable<unknown>): Promise<void> {
    const sparse = sparseLayout(header);
    const name = sparse?.name ?? header.name;
    const { components, climbedOut } = archivePathComponents(name);
    if (climbedOut) this.options.warn(`${name}: path climbs out of the layer, confined to /${components.join('/')}`);
    const base = components.at(-1);
    if (base === undefined) return; // the layer's root itself: the snapshot directory keeps its own attributes
    refuseWhiteoutAsParent(name, components);
    try {
      if (base.startsWith(WHITEOUT_PREFIX)) await this.applyWhiteout(name, components, base);
      else await this.applyEntry(header, components, content, sparse);
    } catch (error) {
      if (!(error instanceof UnsafePathError)) throw error;
      this.options.warn(`${name}: skipped, ${error.message}`);
    }
  }

  private async applyWhiteout(name: string, components: string[], base: string): Promise<void> {
    const parent = components.slice(0, -1);
    if (base === OPAQUE_MARKER) {
      await markOpaque(path.dirname(this.parents.ensureParents(components)));
    } else if (base.startsWith(AUFS_METADATA_PREFIX)) {
      // aufs bookkeeping: nothing to do for overlayfs.
    } else {
      const target = this.parents.ensureParents([...parent, whiteoutTarget(name, base)]);
      this.clearPath(target, false);
      await createWhiteout(target);
    }
  }

  private async applyEntry(
    header: Header,
    components: string[],
    content: AsyncIterable<unknown>,
    sparse: SparseLayout | undefined,
  ): Promise<void> {
    const target = this.parents.ensureParents(components);
    switch (header.type ?? 'file') {
      case 'directory':
        if (this.clearPath(target, true) === 'cleared') {
          mkdirSync(target, { mode: 0o700 });
          this.files.directoryCreated(target);
        }
        this.parents.created(target);
        if (this.options.preserveOwnership) lchownSync(target, header.uid ?? 0, header.gid ?? 0);
        this.directories.push({ components, mode: this.sanitizedMode(header), mtime: header.mtime });
        return;
      case 'file':
      case 'contiguous-file':
        this.clearPath(target, false);
        return this.writeFile(target, header, content, sparse);
      case 'symlink':
        this.clearPath(target, false);
        // The link's text is data, not followed here; it is only dangerous to whoever follows it, and this code never does.
        symlinkSync(header.linkname ?? '', target);
        if (this.options.preserveOwnership) lchownSync(target, header.uid ?? 0, header.gid ?? 0);
        if (header.mtime) lutimesSync(target, header.mtime, header.mtime);
        return;
      case 'link':
        return this.applyHardlink(header, target);
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.options.warn(`${header.name}: skipped ${header.type} (containers get /dev from the runtime)`);
        return;
      default:
        this.options.warn(`${header.name}: skipped unsupported entry type ${header.type}`);
    }
  }

  /** Content, ownership (before the mode: chown clears setuid bits), mode and mtime, all through one descriptor. */
  private async writeFile(
    target: string,
    header: Header,
    content: AsyncIterable<unknown>,
    sparse: SparseLayout | undefined,
  ): Promise<void> {
    const fd = openSync(target, NEW_FILE_FLAGS, 0o600);
    try {
      if (sparse) await writeSparseContent(fd, content, sparse);
      else if ((header.size ?? 0) >= ASYNC_WRITE_BYTES) for await (const chunk of content) await writeAllAsync(fd, chunk as Buffer);
      else for await (const chunk of content) writeAll(fd, chunk as Buffer, null);
      if (this.options.preserveOwnership) fchownSync(fd, header.uid ?? 0, header.gid ?? 0);
      fchmodSync(fd, this.sanitizedMode(header));
      if (header.mtime) futimesSync(fd, header.mtime, header.mtime);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    await this.files.closeFile(fd, target, sparse?.realSize ?? header.size ?? 0);
  }

  /** A hardlink may only point at an entry already written into this layer, reached without symlinks. */
  private async applyHardlink(header: Header, target: string): Promise<void> {
    const { components } = archivePathComponents(header.linkname ?? '');
    const source = await existingPathInside(this.root, components);
    const stats = source ? await lstat(source) : undefined;
    if (!source || !stats || stats.isDirectory()) {
      throw new UnsafePathError(`hardlink target ${header.linkname} is not a file of this layer`);
    }
    if (source === target) return;
    this.clearPath(target, false);
    await link(source, target);
  }

  /** Removes whatever an earlier entry put at `target` (tar semantics: the last entry wins), except a directory that stays one. */
  private clearPath(target: string, keepDirectory: boolean): 'kept' | 'cleared' {
    const stats = lstatSync(target, { throwIfNoEntry: false });
    if (stats?.isDirectory() && keepDirectory) return 'kept';
    if (stats) {
      rmSync(target, { recursive: true, force: true });
      this.parents.forget();
    }
    return 'cleared';
  }

  async applyDirectoryAttributes(): Promise<void> {
    const deepestFirst = [...this.directories].sort((a, b) => b.components.length - a.components.length);
    for (const directory of deepestFirst) {
      // A later entry may have replaced the directory or a parent with a symlink: chmod would follow it.
      const target = await existingPathInside(this.root, directory.components);
      if (!target || !(await lstat(target)).isDirectory()) continue;
      await chmod(target, directory.mode);
      if (directory.mtime) await lutimes(target, directory.mtime, directory.mtime);
    }
  }

  private sanitizedMode(header: Header): number {
    const mode = (header.mode ?? 0o644) & 0o7777;
    return this.options.keepSetid ? mode : mode & ~SETID_BITS;
  }
}

/** Writes the whole chunk at `position` (null: the current offset). */
function writeAll(fd: number, chunk: Buffer, position: number | null): void {
  let written = 0;
  while (written < chunk.length)
    written += writeSync(fd, chunk, written, chunk.length - written, position === null ? null : position + written);
}

async function writeAllAsync(fd: number, chunk: Buffer): Promise<void> {
  let written = 0;
  while (written < chunk.length) written += (await writeAsync(fd, chunk, written, chunk.length - written, null)).bytesWritten;
}

/** Writes each data run at its offset and sizes the file: the holes between runs are never written, so they stay holes. */
async function writeSparseContent(fd: number, content: AsyncIterable<unknown>, sparse: SparseLayout): Promise<void> {
  const inData = sparse.segments === 'in-data' ? new InDataSparseMap(sparse.name) : undefined;
  let segments: SparseSegment[] | undefined = sparse.segments === 'in-data' ? undefined : sparse.segments;
  if (segments) checkSegments(segments, sparse.realSize, sparse.name);
  let index = 0;
  let filled = 0;
  for await (const received of content) {
    let chunk = received as Buffer;
    if (!segments) {
      const map = inData?.take(chunk);
      if (!map) continue;
      checkSegments(map.segments, sparse.realSize, sparse.name);
      ({ segments, rest: chunk } = map);
    }
    while (chunk.length > 0) {
      const segment = segments[index];
      if (!segment) throw new LayerFormatError(`sparse entry ${JSON.stringify(sparse.name)} has more data than its map describes`);
      const part = chunk.subarray(0, segment.length - filled);
      writeAll(fd, part, segment.offset + filled);
      filled += part.length;
      chunk = chunk.subarray(part.length);
      if (filled === segment.length) [index, filled] = [index + 1, 0];
    }
  }
  const complete =
    segments !== undefined && segments.slice(index).every((segment, offset) => segment.length === (offset === 0 ? filled : 0));
  if (!complete) throw new LayerFormatError(`sparse entry ${JSON.stringify(sparse.name)} has less data than its map describes`);
  ftruncateSync(fd, sparse.realSize);
}

/**
 * The name a whiteout deletes. Only a plain entry name is accepted: `.wh.` (nothing), `.wh..` (the layer's
 * own root) and `.wh...` (its parent) would otherwise turn the root into a device or delete outside it.
 */
function whiteoutTarget(entryName: string, base: string): string {
  const deleted = base.slice(WHITEOUT_PREFIX.length);
  if (deleted === '' || deleted === '.' || deleted === '..' || deleted.includes('/')) {
    throw new LayerFormatError(`whiteout entry ${JSON.stringify(entryName)} does not name an entry to delete; refusing the layer`);
  }
  return deleted;
}

/** `.wh.a/b`: a whiteout is a deletion marker, never a directory that holds entries (aufs' `.wh..wh.` bookkeeping directories aside). */
function refuseWhiteoutAsParent(name: string, components: readonly string[]): void {
  const isWhiteout = (component: string) => component.startsWith(WHITEOUT_PREFIX) && !component.startsWith(AUFS_METADATA_PREFIX);
  if (components.slice(0, -1).some(isWhiteout)) {
    throw new LayerFormatError(`entry ${JSON.stringify(name)} has a whiteout name as a parent directory; refusing the layer`);
  }
}
