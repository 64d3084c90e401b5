import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { mountFilesystem, unmountFilesystem } from '../support/linux-mount.js';

/**
 * A container's root filesystem: an overlay of the image's snapshots (read-only, shared) under the
 * container's own writable layer (`diff`), mounted at `rootfs` in the container's directory. Removing the
 * container removes `diff` only.
 */
export const RootfsDir = { mount: 'rootfs', upper: 'diff', work: 'work' } as const;

/** An overlay's directories: where it is mounted, its writable upper and work directories, and its lower ones. */
export interface OverlayDirectories {
  target: string;
  upper: string;
  work: string;
  lowerDirsTopFirst: readonly string[];
}

/** The overlay of `lowerDirsTopFirst` for `containerDir`, its directories created; not mounted. */
export async function prepareOverlay(containerDir: string, lowerDirsTopFirst: readonly string[]): Promise<OverlayDirectories> {
  const [target, upper, work] = [RootfsDir.mount, RootfsDir.upper, RootfsDir.work].map((name) => path.join(containerDir, name)) as [
    string,
    string,
    string,
  ];
  await Promise.all([target, upper, work].map((directory) => mkdir(directory, { recursive: true, mode: 0o755 })));
  return { target, upper, work, lowerDirsTopFirst };
}

/** The overlay's mount options. The kernel takes at most a page of them: about 35 layers at the default data dir. */
export function overlayOptions(overlay: OverlayDirectories): string {
  return `lowerdir=${overlay.lowerDirsTopFirst.join(':')},upperdir=${overlay.upper},workdir=${overlay.work}`;
}

/**
 * Mounts the overlay unless it is mounted already (a restart, or a daemon that came back); returns its path.
 * The writable layer of a container removed after its run (`--rm`, `durable` false) is volatile, as podman
 * mounts a `--rm` container's: no fsync reaches the disk through it, and its unmount skips the syncfs of the
 * whole filesystem under the data directory (other programs' writes included) that an overlay's unmount does.
 * A host crash loses such a layer, which the agent removes after a crash anyway.
 */
export async function mountRootfs(containerDir: string, lowerDirsTopFirst: readonly string[], durable: boolean): Promise<string> {
  const target = path.join(containerDir, RootfsDir.mount);
  if (await isMountPoint(target)) return target;
  const overlay = await prepareOverlay(containerDir, lowerDirsTopFirst);
  if (durable) await mountFilesystem('overlay', overlay.target, overlayOptions(overlay));
  else {
    // The kernel leaves this mark after a volatile mount, even unmounted cleanly, and refuses the work directory
    // while it is there. Only a clean unmount can precede this mount (after a host crash the container is removed).
    await rm(path.join(overlay.work, 'work', 'incompat', 'volatile'), { recursive: true, force: true });
    await mountFilesystem('overlay', overlay.target, `${overlayOptions(overlay)},volatile`);
  }
  return target;
}

export async function unmountRootfs(containerDir: string): Promise<void> {
  const target = path.join(containerDir, RootfsDir.mount);
  if (await isMountPoint(target)) await unmountFilesystem(target);
}

async function isMountPoint(directory: string): Promise<boolean> {
  const mountInfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountInfo.split('\n').some((line) => line.split(' ')[4] === directory);
}
