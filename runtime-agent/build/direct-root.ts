import type { Stats } from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { LayeredRoot, type OpaqueLookup } from '../snapshot/layered-root.js';
import { resolveComponents } from '../unpack/rooted-path.js';

/**
 * A COPY or WORKDIR step's root without an overlay mount. What the step writes goes straight into its new
 * layer's directory (the upper); what it reads (symlinks on a destination's way, /etc/passwd, whether a
 * destination is a directory) is read through the layers, the new one on top (LayeredRoot). A directory the
 * step writes into that only a lower layer has is first made in the upper with that layer's mode, owner and
 * times, as overlayfs copies a directory up. The upper directory is then the step's diff, as a mounted
 * overlay's would be, and no `mount` or `umount` process runs. Extended attributes of such directories are not
 * copied (overlayfs would copy them): base images rarely put any on directories.
 *
 * Below a directory it returns, the copier works in the upper alone: an entry it writes hides whatever the
 * lower layers have at that path (a directory over a file, a file over a directory), and a directory it
 * makes shows the lower layers' entries in it too, as the overlay would after the same writes.
 */

export interface Owner {
  uid: number;
  gid: number;
}

export class DirectRoot {
  private readonly layers: LayeredRoot;

  constructor(
    readonly upper: string,
    lowerDirsTopFirst: readonly string[],
    opaque: OpaqueLookup,
  ) {
    const inUpper = `${upper}${path.sep}`;
    // The step never marks a directory opaque: only the lower layers' directories are asked about.
    const lowersOnly: OpaqueLookup = {
      anyOpaque: (directories) => opaque.anyOpaque(directories.filter((directory) => !directory.startsWith(inUpper))),
    };
    this.layers = new LayeredRoot([upper, ...lowerDirsTopFirst], lowersOnly);
  }

  /** Where the entry at `target` is read from, every symlink on the way followed inside the root; undefined when absent. */
  readablePath(target: string): Promise<string | undefined> {
    return this.layers.hostPath(target);
  }

  async isDirectory(target: string): Promise<boolean> {
    const found = await this.readablePath(target);
    return found !== undefined && (await lstat(found)).isDirectory();
  }

  /** WORKDIR's directory: made (as `directory` makes it) unless the layers show one there already; then nothing changes. */
  async ensureDirectory(target: string, owner: Owner | undefined): Promise<void> {
    if (!(await this.isDirectory(target))) await this.directory(target, owner);
  }

  /**
   * The upper's host path of the directory at `target` (symlinks on the way followed inside the root), for the
   * step to write into. Directories the layers show are copied up; missing ones are made (0755, belonging to
   * `owner` when given, as BuildKit's COPY --chown and WORKDIR under USER make them); a non-directory at
   * `target` is hidden by the new directory, one on the way is an error.
   */
  async directory(target: string, owner: Owner | undefined): Promise<string> {
    const components = await resolveComponents(target, (prefix) => this.layers.locate(prefix));
    let current = this.upper;
    for (const [depth, component] of components.entries()) {
      const parent = current;
      current = path.join(current, component);
      const shown = await this.layers.locate(components.slice(0, depth + 1));
      const stats = shown === undefined ? undefined : await lstat(shown);
      if (stats?.isDirectory()) {
        if (shown !== current) await copyUp(current, stats, depth > 0 ? parent : undefined);
        continue;
      }
      if (stats && depth < components.length - 1)
        throw new Error(`${target}: /${components.slice(0, depth + 1).join('/')} is not a directory`);
      // A non-directory this step wrote itself is replaced; a lower layer's is hidden by the new directory.
      if (shown === current) await rm(current, { force: true });
      await mkdir(current, { mode: 0o755 });
      if (owner) await lchown(current, owner.uid, owner.gid);
    }
    return current;
  }
}

/**
 * A lower layer's directory made in the upper with its mode, owner and times. Making it changed its upper
 * parent's modification time, which overlayfs puts back after a copy-up (`parent`: undefined for the root,
 * which no layer records).
 */
async function copyUp(upperPath: string, lower: Stats, parent: string | undefined): Promise<void> {
  const parentTimes = parent === undefined ? undefined : await lstat(parent);
  await mkdir(upperPath);
  await lchown(upperPath, lower.uid, lower.gid);
  await chmod(upperPath, lower.mode & 0o7777);
  await lutimes(upperPath, lower.atime, lower.mtime);
  if (parent !== undefined && parentTimes) await lutimes(parent, parentTimes.atime, parentTimes.mtime);
}
