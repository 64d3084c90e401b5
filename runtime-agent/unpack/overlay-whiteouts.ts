import { getAttributeSync, setAttribute } from '@napi-rs/xattr';
import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import { promisify } from 'node:util';

/**
 * OCI whiteouts in overlayfs form. Node has no mknod(2), so a whiteout is made by coreutils' `mknod`: they are
 * rare (only deletions in upper layers), so a process per whiteout costs little. Node has no xattr calls either;
 * the opaque flag is read and written through `@napi-rs/xattr` (lgetxattr/lsetxattr in an N-API addon shipped
 * built for each platform) rather than by a `getfattr` process per build step: a fork of the agent's whole
 * address space cost 17 ms or more of its main thread at the loads the builds run at.
 */

const run = promisify(execFile);

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** A deleted `<name>` becomes a character device 0/0 named `<name>`: overlayfs hides it in lower layers. */
export async function createWhiteout(file: string): Promise<void> {
  await run('mknod', ['--mode=0000', file, 'c', '0', '0']);
}

/** A deleted `<name>`, in overlayfs form (lstat shows it; no process needed to tell). */
export function isWhiteout(stats: Stats): boolean {
  return stats.isCharacterDevice() && stats.rdev === 0;
}

/** An opaque directory hides everything below it in lower layers. The attribute is set on `directory` itself, never through a symlink. */
export async function markOpaque(directory: string): Promise<void> {
  await setAttribute(directory, OPAQUE_XATTR, 'y');
}

/** Whether `entry` is an opaque directory: one lgetxattr(2), never through a symlink; a missing entry is not. */
export function isOpaque(entry: string): boolean {
  return getAttributeSync(entry, OPAQUE_XATTR)?.toString() === 'y';
}
