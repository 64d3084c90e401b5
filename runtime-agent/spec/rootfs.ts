import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { runHostCommand } from '../support/host-command.js';

/**
 * A container's root filesystem: an overlay of the image's snapshots (read-only, shared) under the
 * container's own writable layer (`diff`), mounted at `rootfs` in the container's directory. Removing the
 * container removes `diff` only.
 */
export const RootfsDir = { mount: 'rootfs', upper: 'diff', work: 'work' } as const;

/** Mounts the overlay unless it is mounted already (a restart, or a daemon that came back); returns its path. */
export async function mountRootfs(containerDir: string, lowerDirsTopFirst: readonly string[]): Promise<string> {
  const [target, upper, work] = [RootfsDir.mount, RootfsDir.upper, RootfsDir.work].map((name) => path.join(containerDir, name)) as [
    string,
    string,
    string,
  ];
  if (await isMountPoint(target)) return target;
  await Promise.all([target, upper, work].map((directory) => mkdir(directory, { recursive: true, mode: 0o755 })));
  // The kernel takes at most a page of mount options: about 35 layers at the default data dir.
  const options = `lowerdir=${lowerDirsTopFirst.join(':')},upperdir=${upper},workdir=${work}`;
  await runHostCommand('mount', ['-t', 'overlay', 'overlay', '-o', options, target]);
  return target;
}

export async function unmountRootfs(containerDir: string): Promise<void> {
  const target = path.join(containerDir, RootfsDir.mount);
  if (await isMountPoint(target)) await runHostCommand('umount', [target]);
}

async function isMountPoint(directory: string): Promise<boolean> {
  const mountInfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountInfo.split('\n').some((line) => line.split(' ')[4] === directory);
}
