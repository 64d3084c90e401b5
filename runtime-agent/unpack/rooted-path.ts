import { lstatSync, mkdirSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';

/** An archive entry that would have to go through a symlink or a file to be written. */
export class UnsafePathError extends Error {}

/** A path that leaves its root (`..` above it, or an absolute symlink) where leaving is refused. */
export class PathEscapeError extends UnsafePathError {}

/**
 * What a path that leaves its root means: 'confine' resolves it as if the root were `/` (a container's view
 * of its own filesystem); 'refuse' makes it a PathEscapeError (a build context, where nothing outside exists).
 */
export type RootEscape = 'confine' | 'refuse';

/**
 * An archive path as components below the root. `..` and absolute names are confined lexically, as if the
 * root were `/` (what containerd does): `../../etc/x` and `/etc/x` both mean `<root>/etc/x`.
 */
export function archivePathComponents(name: string): { components: string[]; climbedOut: boolean } {
  const components: string[] = [];
  let climbedOut = false;
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (components.pop() === undefined) climbedOut = true;
    } else {
      components.push(part);
    }
  }
  return { components, climbedOut };
}

/**
 * Makes every parent of an entry a real directory under `root`, creating missing ones. Each existing parent
 * is checked with lstat, so a symlink placed by an earlier entry is never followed: writing through it could
 * land anywhere on the host. Directories already checked are remembered, so a layer of many files in few
 * directories costs no lstat per file; `forget` must be called whenever an entry is removed or replaced.
 * Synchronous: each call is a few cheap syscalls, far cheaper than a thread-pool round trip per syscall.
 */
export class LayerDirectories {
  private readonly known = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly onCreated: (directory: string) => void = () => undefined,
  ) {}

  /** Creates the parents of `components` as needed and returns the entry's absolute path. */
  ensureParents(components: readonly string[]): string {
    let current = this.root;
    for (const component of components.slice(0, -1)) {
      current = path.join(current, component);
      if (this.known.has(current)) continue;
      const stats = lstatSync(current, { throwIfNoEntry: false });
      if (!stats) {
        mkdirSync(current, { mode: 0o755 });
        this.onCreated(current);
      } else if (!stats.isDirectory())
        throw new UnsafePathError(
          `${path.relative(this.root, current)} is a ${stats.isSymbolicLink() ? 'symlink' : 'non-directory'}, not followed`,
        );
      this.known.add(current);
    }
    return path.join(this.root, ...components);
  }

  /** A directory this layer created itself at `directory` (its parents already ensured). */
  created(directory: string): void {
    this.known.add(directory);
  }

  forget(): void {
    this.known.clear();
  }
}

/** The path of an existing entry reached through real directories only, or undefined. */
export async function existingPathInside(root: string, components: readonly string[]): Promise<string | undefined> {
  let current = root;
  for (const component of components.slice(0, -1)) {
    current = path.join(current, component);
    const stats = await lstat(current).catch(() => undefined);
    if (!stats?.isDirectory()) return undefined;
  }
  const target = path.join(root, ...components);
  return (await lstat(target).catch(() => undefined)) ? target : undefined;
}

/** Symlinks followed by resolveInRoot before it gives up, as the kernel's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;

/**
 * The host path of `target` (a path inside a container) with every symlink on the way resolved as the
 * container would see it: absolute links and `..` stop at `root`, as if it were `/` (what docker's
 * FollowSymlinkInScope does). The result is always under `root`; missing components are kept as named.
 */
export async function resolveInRoot(root: string, target: string, escapes: RootEscape = 'confine'): Promise<string> {
  return path.join(root, ...(await resolveComponents(target, (components) => path.join(root, ...components), escapes)));
}

/**
 * `target`'s components with every symlink on the way resolved inside the container, `hostPathOf` giving
 * where a container path is on the host (its root, a mount's source beneath it, or the layer that shows it;
 * undefined when nothing is there). Each component is looked at with lstat, never followed by the kernel.
 */
export async function resolveComponents(
  target: string,
  hostPathOf: (components: readonly string[]) => string | Promise<string | undefined>,
  escapes: RootEscape = 'confine',
): Promise<string[]> {
  let resolved: string[] = [];
  const pending = target.split('/');
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.pop() === undefined && escapes === 'refuse') throw new PathEscapeError(`${target} climbs out of its root`);
      continue;
    }
    const candidate = await hostPathOf([...resolved, part]);
    const stats = candidate === undefined ? undefined : await lstat(candidate).catch(() => undefined);
    if (candidate === undefined || !stats?.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new UnsafePathError(`too many levels of symbolic links resolving ${target}`);
    const link = await readlink(candidate);
    if (link.startsWith('/')) {
      if (escapes === 'refuse') throw new PathEscapeError(`${target} goes through the absolute symbolic link ${link}`);
      resolved = [];
    }
    pending.unshift(...link.split('/'));
  }
  return resolved;
}
