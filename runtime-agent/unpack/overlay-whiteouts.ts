import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * OCI whiteouts in overlayfs form. Node has no mknod(2) or setxattr(2), so both are done by the standard
 * tools: coreutils' `mknod` and `setfattr` from Debian's `attr` package. Whiteouts are rare (only deletions
 * in upper layers), so a process per whiteout costs little.
 */

const run = promisify(execFile);

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** A deleted `<name>` becomes a character device 0/0 named `<name>`: overlayfs hides it in lower layers. */
export async function createWhiteout(file: string): Promise<void> {
  await run('mknod', ['--mode=0000', file, 'c', '0', '0']);
}

/** An opaque directory hides everything below it in lower layers. `-h`: never follow a symlink. */
export async function markOpaque(directory: string): Promise<void> {
  await run('setfattr', ['-h', '-n', OPAQUE_XATTR, '-v', 'y', directory]);
}
