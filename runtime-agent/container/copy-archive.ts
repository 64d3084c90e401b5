import type { Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { EVERY_ENTRY, packTar, walkTree, type TarItem } from '../archive/directory-tar.js';
import { applyLayerTar } from '../unpack/layer-applier.js';
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
  if (!contentOnly) {
    const top = await copyItem(hostPath, name, stats);
    if (top) yield top;
  }
  if (!stats.isDirectory()) return;
  for await (const entry of walkTree(hostPath, EVERY_ENTRY)) {
    const item = await copyItem(entry.hostPath, contentOnly ? entry.relative : `${name}/${entry.relative}`, entry.stats);
    if (item) yield item;
  }
}

async function copyItem(hostPath: string, name: string, stats: Stats): Promise<TarItem | undefined> {
  const header = { name, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtime: stats.mtime };
  if (stats.isDirectory()) return { header: { ...header, type: 'directory' }, contentPath: undefined };
  if (stats.isSymbolicLink()) return { header: { ...header, type: 'symlink', linkname: await readlink(hostPath) }, contentPath: undefined };
  if (stats.isFile()) return { header: { ...header, type: 'file', size: stats.size }, contentPath: hostPath };
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
 * Writes a cp archive at its target: the top entry renamed if asked (a content-only archive gets a directory of
 * that name), overlay whiteout names refused rather than turned into deletions, then the layer applier.
 */
export async function extractCopy(archive: Readable, target: CopyTarget, contentOnly: boolean, options: ExtractOptions): Promise<void> {
  const extract = tar.extract();
  const repack = tar.pack();
  const feeding = pipeline(archive, extract);
  const repacked = new PassThrough();
  const repacking = pipeline(repack, repacked);
  const applying = applyLayerTar(repacked, target.directory, {
    keepSetid: false,
    preserveOwnership: options.preserveOwnership,
    warn: options.warn,
  });
  try {
    if (contentOnly && target.rename) repack.entry({ name: target.rename, type: 'directory', mode: 0o755 });
    for await (const entry of extract) {
      const { components } = archivePathComponents(entry.header.name);
      if (components.some((component) => component.startsWith(WHITEOUT_PREFIX))) {
        options.warn(`${entry.header.name}: skipped, a name overlayfs reserves for deletions`);
        entry.resume();
        continue;
      }
      const renamed = rename(components, target.rename, contentOnly);
      const header = { ...entry.header, name: renamed };
      if (entry.header.type === 'file') await pipeline(entry, repack.entry(header));
      else {
        repack.entry(header);
        entry.resume();
      }
    }
    await feeding;
    repack.finalize();
  } catch (error) {
    repack.destroy(error as Error);
    await Promise.allSettled([applying, repacking]);
    throw error;
  }
  await Promise.all([applying, repacking]);
}

function rename(components: readonly string[], newTop: string | undefined, contentOnly: boolean): string {
  if (newTop === undefined) return components.join('/');
  if (contentOnly) return [newTop, ...components].join('/');
  return [newTop, ...components.slice(1)].join('/');
}
