import { createRequire } from 'node:module';

/** The addon binding.gyp compiles at `npm ci` (runtime-agent/native/linux-mount.c). */
interface LinuxMountAddon {
  mount(fstype: string, source: string, target: string, options: string): Promise<void>;
  umount(target: string): Promise<void>;
}

// From dist/runtime-agent/support/ to the package's build/.
const addon = createRequire(import.meta.url)('../../../build/Release/linux_mount.node') as LinuxMountAddon;

/**
 * mount(2) and umount2(2) without a process: spawning util-linux's tools forks the whole daemon for one
 * system call. A failure rejects with an Error naming the call, whose `code` is the errno's name.
 */
export async function mountFilesystem(fstype: string, target: string, options: string): Promise<void> {
  await addon.mount(fstype, fstype, target, options).catch((error: NodeJS.ErrnoException) => {
    throw Object.assign(new Error(`mount -t ${fstype} -o ${options} ${target} failed: ${error.message}`), { code: error.code });
  });
}

export async function unmountFilesystem(target: string): Promise<void> {
  await addon.umount(target).catch((error: NodeJS.ErrnoException) => {
    throw Object.assign(new Error(`umount ${target} failed: ${error.message}`), { code: error.code });
  });
}
