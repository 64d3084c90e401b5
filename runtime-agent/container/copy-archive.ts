import type { Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { EVERY_ENTRY, packTar, walkTree, type TarItem } from '../archive/directory-tar.js';
import { applyArchiveEntries, type ArchiveEntry } from '../unpack/layer-applier.js';
import { WHITEOUT_PREFIX } from '../unpack/overlay-whiteouts.js';
import { archivePathComponents } from '../unpack/rooted-path.js';

/**
 * `cp`'s tar semantics, the same on both sides (the daemon in a container's root, the CLI on the local disk):
 * a source is archived under its own name (a directory with its content), or as its content alone when the
 * source ends in `/.`; where it lands follows docker cp's rules (copyTarget); entries are written by the
 * layer applier, which keeps every entry inside the target directory and never follows a symlink there.
 */

export class CopyError extends Error {}

export interface SourceInfo {
  name: string;
  isDirectory: boolean;
}

/** Streams a tar of `hostPath` whose entries start with `name` (`.` for the content of a directory). */
export function packPath(hostPath: string, name: string): Readable {
  return packTar(copyItems(hostPath, name));
}

async function* copyItems(hostPath: string, name: string): AsyncGenerator<TarItem> {
  const stats = await lstat(hostPath);
  const contentOnly = stats.isDirectory() && name === '.';
  const linked = new Map<string, string>();
  if (!contentOnly) {
    const top = await copyItem(hostPath, name, stats, linked);
    if (top) yield top;
  }
  if (!stats.isDirectory()) return;
  for await (const entry of walkTree(hostPath, EVERY_ENTRY)) {
    const item = await copyItem(entry.hostPath, contentOnly ? entry.relative : `${name}/${entry.relative}`, entry.stats, linked);
    if (item) yield item;
  }
}

/**
 * `linked`: the archive name of each file with more than one link, by device and inode, so that its other
 * names go in as hard links to it (as docker cp and tar archive them), not as copies.
 */
async function copyItem(hostPath: string, name: string, stats: Stats, linked: Map<string, string>): Promise<TarItem | undefined> {
  const header = { name, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtime: stats.mtime };
  if (stats.isDirectory()) return { header: { ...header, type: 'directory' }, contentPath: undefined };
  if (stats.isSymbolicLink()) return { header: { ...header, type: 'symlink', linkname: await readlink(hostPath) }, contentPath: undefined };
  if (stats.isFile()) {
    const inode = `${stats.dev}:${stats.ino}`;
    const first = stats.nlink > 1 ? linked.get(inode) : undefined;
    if (first !== undefined) return { header: { ...header, type: 'link', linkname: first }, contentPath: undefined };
    if (stats.nlink > 1) linked.set(inode, name);
    return { header: { ...header, type: 'file', size: stats.size }, contentPath: hostPath };
  }
  // Sockets, fifos and devices are not copied, as docker cp skips what it cannot archive meaningfully.
  return undefined;
}

export interface CopyTarget {
  /** The existing directory the entries are written into. */
  directory: string;
  /** The name the archive's top entry takes there (a copy to a new name), or undefined to keep it. */
  rename: string | undefined;
}

/**
 * Where a copy lands, as docker cp decides: into an existing directory under the source's name; to a path
 * that does not exist (its parent must) under that path's name; over an existing file only from a file.
 * `destination` is already resolved (symlinks followed inside the right root); `wantsDirectory` is a
 * trailing `/` in what the user typed.
 */
export async function copyTarget(destination: string, wantsDirectory: boolean, source: SourceInfo, shown: string): Promise<CopyTarget> {
  const stats = await lstat(destination).catch(() => undefined);
  if (stats?.isDirectory()) return { directory: destination, rename: undefined };
  if (stats) {
    if (source.isDirectory) throw new CopyError(`cannot copy a directory to a file: ${shown}`);
    return { directory: path.dirname(destination), rename: path.basename(destination) };
  }
  if (wantsDirectory && !source.isDirectory) throw new CopyError(`destination directory ${shown} does not exist`);
  const parent = await lstat(path.dirname(destination)).catch(() => undefined);
  if (!parent?.isDirectory()) throw new CopyError(`no such directory: ${path.dirname(shown)}`);
  return { directory: path.dirname(destination), rename: path.basename(destination) };
}

export interface ExtractOptions {
  /** `-a`: the archive's uid/gid; otherwise the files belong to whoever writes them (root for the daemon). */
  preserveOwnership: boolean;
  warn: (message: string) => void;
}

/**
 * Writes a cp archive at its target in one pass over its entries: the top entry renamed if asked (a
 * content-only archive gets a directory of that name), hard links renamed with what they point at, overlay
 * whiteout names refused rather than turned into deletions, each entry then written by the layer applier.
 */
export async function extractCopy(archive: Readable, target: CopyTarget, contentOnly: boolean, options: ExtractOptions): Promise<void> {
  const extract = tar.extract();
  const feeding = pipeline(archive, extract);
  try {
    await applyArchiveEntries(copyEntries(extract, target.rename, contentOnly, options.warn), target.directory, {
      keepSetid: false,
      preserveOwnership: options.preserveOwnership,
      warn: options.warn,
    });
    await feeding;
  } catch (error) {
    extract.destroy(error as Error);
    await feeding.catch(() => undefined);
    throw error;
  }
}

async function* copyEntries(
  entries: AsyncIterable<ArchiveEntry>,
  newTop: string | undefined,
  contentOnly: boolean,
  warn: (message: string) => void,
): AsyncGenerator<ArchiveEntry> {
  if (contentOnly && newTop) yield newDirectoryEntry(newTop);
  for await (const entry of entries) {
    const { components } = archivePathComponents(entry.header.name);
    if (components.some((component) => component.startsWith(WHITEOUT_PREFIX))) {
      warn(`${entry.header.name}: skipped, a name overlayfs reserves for deletions`);
      entry.resume();
      continue;
    }
    const header = { ...entry.header, name: rename(components, newTop, contentOnly) };
    // A hard link names another entry of the archive, which this copy renames too; a symlink's text is content.
    if (header.type === 'link') header.linkname = rename(archivePathComponents(header.linkname).components, newTop, contentOnly);
    yield withHeader(entry, header);
  }
}

function withHeader(entry: ArchiveEntry, header: Header): ArchiveEntry {
  return { header, resume: () => entry.resume(), [Symbol.asyncIterator]: () => entry[Symbol.asyncIterator]() };
}

/** The directory a content-only copy to a new name creates (docker cp's `dir/.` to a path that does not exist). */
function newDirectoryEntry(name: string): ArchiveEntry {
  const header: Header = {
    name,
    type: 'directory',
    mode: 0o755,
    mtime: new Date(),
    size: 0,
    linkname: '',
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  };
  return { header, resume: () => undefined, [Symbol.asyncIterator]: async function* () {} };
}

function rename(components: readonly string[], newTop: string | undefined, contentOnly: boolean): string {
  if (newTop === undefined) return components.join('/');
  if (contentOnly) return [newTop, ...components].join('/');
  return [newTop, ...components.slice(1)].join('/');
}
