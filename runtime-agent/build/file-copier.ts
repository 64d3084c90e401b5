import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  lchownSync,
  lutimesSync,
  openSync,
  readFileSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { copyFile, lstat, mkdir, readlink, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { READ_AHEAD, SYNC_READ_MAX_FILE, walkTree } from '../archive/directory-tar.js';
import { concurrencyLimit } from '../support/concurrency.js';
import type { ContextFilter } from './context-files.js';
import type { DirectRoot, Owner } from './direct-root.js';

/**
 * Copies files into a step's root as COPY does: a directory's content (not the directory itself) goes into the
 * destination, a file into a directory destination keeps its name, modes and times come along, owners are 0:0
 * unless --chown says otherwise. The destination is resolved inside the root (the image's symlinks followed as
 * the container would) and everything is written into the step's new layer (DirectRoot); an existing symlink
 * where a file goes is replaced, never written through.
 */

export interface CopyOptions {
  owner: Owner | undefined;
  /** --chmod: for every copied file and directory. */
  mode: number | undefined;
  /** Entries under a copied directory that the context's .dockerignore excludes (relative to the context). */
  filter: ContextFilter | undefined;
}

export interface CopyItem {
  hostPath: string;
  stats: Stats;
  /** The context-relative path, for the filter; undefined for sources from elsewhere (another stage). */
  relative: string | undefined;
  /** An archive ADD unpacked: its entries keep their own owners. */
  keepOwners: boolean;
}

/** `destination` is a path inside the root; it names a directory when it ends in `/` or already is one. */
export async function copyIntoRoot(root: DirectRoot, items: readonly CopyItem[], destination: string, options: CopyOptions): Promise<void> {
  const intoDirectory = destination.endsWith('/') || (await root.isDirectory(destination));
  // Every item goes into the same directory (or, alone, next to it): it is resolved and made once.
  const directories = new Map<string, Promise<string>>();
  const directory = (target: string) => {
    let made = directories.get(target);
    if (!made) {
      made = root.directory(target, options.owner);
      directories.set(target, made);
    }
    return made;
  };
  for (const item of items) {
    if (item.stats.isDirectory()) {
      await copyDirectoryContent(item, await directory(destination), options);
    } else {
      const containerPath = intoDirectory ? path.posix.join(destination, path.basename(item.hostPath)) : destination;
      const parent = await directory(path.posix.dirname(containerPath));
      await copyLeaf(item, path.join(parent, path.posix.basename(containerPath)), options, false, false);
    }
  }
}

/**
 * Below a resolved directory nothing is followed: an image's symlink where a copied entry goes is replaced.
 * Directories are made in walk order (a parent before its entries), files copied several at once, and the
 * directories' own modes and times set last, deepest first, so that nothing written into them changes those.
 */
async function copyDirectoryContent(item: CopyItem, target: string, options: CopyOptions): Promise<void> {
  const contextPath = (relative: string) =>
    item.relative === undefined ? undefined : item.relative === '' ? relative : `${item.relative}/${relative}`;
  const ignored = (relative: string) => {
    const inContext = contextPath(relative);
    return inContext !== undefined && options.filter !== undefined && options.filter.ignores(inContext);
  };
  const rules = {
    include: (relative: string) => !ignored(relative),
    descend: (_relative: string, _stats: Stats, included: boolean) => included,
  };
  const createdAsWanted = await createdWithWantedOwner(item, target, options);
  const limit = concurrencyLimit(READ_AHEAD);
  const copies: Array<Promise<void>> = [];
  const directories: Array<{ child: CopyItem; childTarget: string; owned: boolean }> = [];
  // Directories this copy made: nothing can be in the way of their entries.
  const made = new Set<string>();
  let entries = 0;
  try {
    for await (const { relative, hostPath, stats } of walkTree(item.hostPath, rules)) {
      // Small files are copied synchronously: the daemon's other work gets its turn between batches.
      if (++entries % SYNC_BATCH === 0) await nextTurn();
      const child: CopyItem = { hostPath, stats, relative: contextPath(relative), keepOwners: item.keepOwners };
      const childTarget = path.join(target, relative);
      const inMade = made.has(path.dirname(childTarget));
      if (!stats.isDirectory()) {
        const copy = limit(() => copyLeaf(child, childTarget, options, inMade, inMade && createdAsWanted));
        // Awaited below with the others; this only keeps an early failure from counting as unhandled meanwhile.
        copy.catch(() => undefined);
        copies.push(copy);
        continue;
      }
      const existing = inMade ? undefined : await lstat(childTarget).catch(() => undefined);
      if (existing && !existing.isDirectory()) await rm(childTarget, { force: true });
      if (!existing?.isDirectory()) {
        await mkdir(childTarget, { mode: 0o755 });
        made.add(childTarget);
      }
      directories.push({ child, childTarget, owned: made.has(childTarget) && createdAsWanted });
    }
  } finally {
    await Promise.allSettled(copies);
  }
  await Promise.all(copies);
  for (const { child, childTarget, owned } of directories.reverse()) applyMetadata(childTarget, child, options, owned);
}

const SETGID = 0o2000;
/** Entries copied between two turns of the event loop: some tens of milliseconds of synchronous copies at the most. */
const SYNC_BATCH = 64;

/**
 * Whether what this copy creates in directories it made already has the owner COPY gives it: the daemon
 * (root:root) creates it, the owner wanted is root:root, and no setgid directory passes its group down. An
 * lchown through the overlay costs about as much as the copy of a small file; it is spared then.
 */
async function createdWithWantedOwner(item: CopyItem, target: string, options: CopyOptions): Promise<boolean> {
  const wanted = options.owner ?? { uid: 0, gid: 0 };
  if (item.keepOwners || wanted.uid !== 0 || wanted.gid !== 0 || process.geteuid?.() !== 0 || process.getegid?.() !== 0) return false;
  return ((await lstat(target)).mode & SETGID) === 0;
}

async function copyLeaf(item: CopyItem, target: string, options: CopyOptions, nothingThere: boolean, owned: boolean): Promise<void> {
  if (!nothingThere && (await lstat(target).catch(() => undefined))) await rm(target, { recursive: true, force: true });
  if (item.stats.isSymbolicLink()) await symlink(await readlink(item.hostPath), target);
  else if (item.stats.isFile()) await copyRegularFile(item, target);
  else return; // sockets, fifos and devices in a context are not copied, as docker skips them
  applyMetadata(target, item, options, owned);
}

/**
 * A small file (as directory-tar reads one synchronously) is copied by synchronous calls: its data is a
 * page or two, and the thread-pool round trip cost more CPU than the copy (3,000 small files with their times:
 * 1.5-1.6 s of CPU through the promise API, 0.8-1.2 s synchronously, at load 16). Larger files go to the pool.
 */
async function copyRegularFile(item: CopyItem, target: string): Promise<void> {
  if (item.stats.size <= SYNC_READ_MAX_FILE) writeNewFile(target, readFileSync(item.hostPath), item.stats.mode & 0o7777);
  else await copyFile(item.hostPath, target);
}

/**
 * Read whole and written to a new file rather than by copyFileSync, whose fstat of the new file, ftruncate and
 * copy_file_range cost about twice the system time for a file of a page or less (3,000 files of 30 bytes:
 * 150-230 ms against 65-80 ms). O_EXCL: copyLeaf removed whatever was there, and a symlink put there since is
 * never written through.
 */
function writeNewFile(target: string, data: Buffer, mode: number): void {
  const fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    // open's mode passed through the umask; the source's mode is what a copy has.
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/**
 * `owned`: the entry was created with the owner it must have (createdWithWantedOwner). Each call is one system
 * call on an inode just written, made synchronously for the same reason as copyRegularFile.
 */
function applyMetadata(target: string, item: CopyItem, options: CopyOptions, owned: boolean): void {
  const { stats } = item;
  const owner = item.keepOwners ? { uid: stats.uid, gid: stats.gid } : (options.owner ?? { uid: 0, gid: 0 });
  if (!owned) lchownSync(target, owner.uid, owner.gid);
  // The copy gave a file its source's mode already; a change of owner clears only setuid and setgid.
  const modeKept = stats.isFile() && options.mode === undefined && (stats.mode & 0o6000) === 0;
  if (!stats.isSymbolicLink() && !modeKept) chmodSync(target, options.mode ?? stats.mode & 0o7777);
  lutimesSync(target, stats.atime, stats.mtime);
}
