import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { LayerFormatError } from './decompression.js';
import { createWhiteout, markOpaque, OPAQUE_MARKER, WHITEOUT_PREFIX } from './overlay-whiteouts.js';
import { archivePathComponents, ensureParents, existingPathInside, UnsafePathError } from './rooted-path.js';

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
 * Writes an uncompressed layer tar into `root`, an empty directory, turning OCI whiteouts into overlayfs
 * form. Every entry stays inside `root`: paths are confined lexically, parents are never symlinks, hardlinks
 * only point at entries of this layer, and device nodes are not created.
 */
export async function applyLayerTar(tarStream: Readable, root: string, options: ApplyOptions): Promise<void> {
  const extract = tar.extract();
  const feeding = pipeline(tarStream, extract);
  const applier = new EntryApplier(root, options);
  try {
    for await (const entry of extract) {
      await applier.apply(entry.header, entry);
      entry.resume();
    }
    await feeding;
  } catch (error) {
    extract.destroy(error as Error);
    await feeding.catch(() => undefined);
    throw error;
  }
  await applier.applyDirectoryAttributes();
}

interface DeferredDirectory {
  components: string[];
  mode: number;
  mtime: Date | undefined;
}

class EntryApplier {
  /** Directory modes and times are set last: a read-only directory must still take its entries, and writing entries changes its mtime. */
  private readonly directories: DeferredDirectory[] = [];

  constructor(
    private readonly root: string,
    private readonly options: ApplyOptions,
  ) {}

  async apply(header: Header, content: AsyncIterable<unknown>): Promise<void> {
    const { components, climbedOut } = archivePathComponents(header.name);
    if (climbedOut) this.options.warn(`${header.name}: path climbs out of the layer, confined to /${components.join('/')}`);
    const base = components.at(-1);
    if (base === undefined) return; // the layer's root itself: the snapshot directory keeps its own attributes
    refuseWhiteoutAsParent(header.name, components);
    try {
      if (base.startsWith(WHITEOUT_PREFIX)) await this.applyWhiteout(header.name, components, base);
      else await this.applyEntry(header, components, content);
    } catch (error) {
      if (!(error instanceof UnsafePathError)) throw error;
      this.options.warn(`${header.name}: skipped, ${error.message}`);
    }
  }

  private async applyWhiteout(name: string, components: string[], base: string): Promise<void> {
    const parent = components.slice(0, -1);
    if (base === OPAQUE_MARKER) {
      const directory = await ensureParents(this.root, components).then(path.dirname);
      await markOpaque(directory);
    } else if (base.startsWith(AUFS_METADATA_PREFIX)) {
      // aufs bookkeeping: nothing to do for overlayfs.
    } else {
      const target = await ensureParents(this.root, [...parent, whiteoutTarget(name, base)]);
      await clearPath(target, false);
      await createWhiteout(target);
    }
  }

  private async applyEntry(header: Header, components: string[], content: AsyncIterable<unknown>): Promise<void> {
    const target = await ensureParents(this.root, components);
    switch (header.type ?? 'file') {
      case 'directory':
        if ((await clearPath(target, true)) === 'cleared') await mkdir(target, { mode: 0o700 });
        await this.applyOwnership(target, header);
        this.directories.push({ components, mode: this.sanitizedMode(header), mtime: header.mtime });
        return;
      case 'file':
      case 'contiguous-file':
        await clearPath(target, false);
        await writeFileContent(target, content);
        await this.applyOwnership(target, header);
        await chmod(target, this.sanitizedMode(header));
        return this.applyMtime(target, header);
      case 'symlink':
        await clearPath(target, false);
        // The link's text is data, not followed here; it is only dangerous to whoever follows it, and this code never does.
        await symlink(header.linkname ?? '', target);
        await this.applyOwnership(target, header);
        return this.applyMtime(target, header);
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

  /** A hardlink may only point at an entry already written into this layer, reached without symlinks. */
  private async applyHardlink(header: Header, target: string): Promise<void> {
    const { components } = archivePathComponents(header.linkname ?? '');
    const source = await existingPathInside(this.root, components);
    const stats = source ? await lstat(source) : undefined;
    if (!source || !stats || stats.isDirectory()) {
      throw new UnsafePathError(`hardlink target ${header.linkname} is not a file of this layer`);
    }
    if (source === target) return;
    await clearPath(target, false);
    await link(source, target);
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

  private async applyOwnership(target: string, header: Header): Promise<void> {
    if (this.options.preserveOwnership) await lchown(target, header.uid ?? 0, header.gid ?? 0);
  }

  private async applyMtime(target: string, header: Header): Promise<void> {
    if (header.mtime) await lutimes(target, header.mtime, header.mtime);
  }
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

/** Removes whatever an earlier entry put at `target` (tar semantics: the last entry wins), except a directory that stays one. */
async function clearPath(target: string, keepDirectory: boolean): Promise<'kept' | 'cleared'> {
  const stats = await lstat(target).catch(() => undefined);
  if (stats?.isDirectory() && keepDirectory) return 'kept';
  if (stats) await rm(target, { recursive: true, force: true });
  return 'cleared';
}

async function writeFileContent(target: string, content: AsyncIterable<unknown>): Promise<void> {
  const handle = await open(target, NEW_FILE_FLAGS, 0o600);
  try {
    for await (const chunk of content) await handle.write(chunk as Buffer);
  } finally {
    await handle.close();
  }
}
