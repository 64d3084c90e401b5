import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import { promisify } from 'node:util';

/**
 * OCI whiteouts in overlayfs form. Node has no mknod(2), setxattr(2) or getxattr(2), so these are done by the
 * standard tools: coreutils' `mknod`, `setfattr` and `getfattr` from Debian's `attr` package. Whiteouts are
 * rare (only deletions in upper layers), so a process per whiteout costs little.
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

/** An opaque directory hides everything below it in lower layers. `-h`: never follow a symlink. */
export async function markOpaque(directory: string): Promise<void> {
  await run('setfattr', ['-h', '-n', OPAQUE_XATTR, '-v', 'y', directory]);
}

/**
 * Which of `paths` (and, with `recursive`, of everything under them) are opaque directories, in one process:
 * `getfattr` prints only the entries that have the attribute (and exits 1 because others lack it, which says
 * nothing here). `-P`: never follow a symlink.
 */
export async function opaqueDirectories(paths: readonly string[], recursive: boolean): Promise<Set<string>> {
  const args = [...(recursive ? ['-R'] : []), '-P', '--absolute-names', '-n', OPAQUE_XATTR, '--', ...paths];
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile('getfattr', args, { maxBuffer: 64 * 1024 * 1024 }, (error, out) =>
      error && (error as NodeJS.ErrnoException).code === 'ENOENT' ? reject(error) : resolve(out),
    ),
  );
  const opaque = new Set<string>();
  let current: string | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) current = line.slice('# file: '.length);
    else if (current !== undefined && line === `${OPAQUE_XATTR}="y"`) opaque.add(current);
  }
  return opaque;
}
