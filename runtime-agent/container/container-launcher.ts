import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { settleAll } from '../support/concurrency.js';
import { runHostCommand } from '../support/host-command.js';
import type { ImageRuntimeConfig } from '../../oci/manifest.js';
import { writeContainerEtcFiles } from '../network/etc-files.js';
import type { ContainerNetwork, NetworkAttachment } from '../network/container-network.js';
import { BundleFile } from '../shim/shim-protocol.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ContainerRecord } from './container-record.js';
import { buildOciSpec, containerHostname } from '../spec/oci-spec.js';
import { mountRootfs, RootfsDir, unmountRootfs } from '../spec/rootfs.js';
import { resolveUser } from '../spec/user-lookup.js';
import type { VolumeStore } from '../volumes/volume-store.js';
import { ContainerFilesystem } from './container-filesystem.js';
import { resolveInRoot } from '../unpack/rooted-path.js';

export const LOG_DIRECTORY = 'logs';
const ETC_DIRECTORY = 'etc';

/**
 * Turns a container record into a runnable OCI bundle in its directory (overlay root, network namespace,
 * /etc files, config.json) and takes it apart again after the run. Every step is idempotent, so a run
 * can be prepared again after a crash or for a restart.
 */
export class ContainerLauncher {
  constructor(
    private readonly snapshots: Snapshotter,
    private readonly network: ContainerNetwork,
    private readonly volumes: VolumeStore,
    /** The host's hard RLIMIT_NOFILE: what every container gets (nothing may ask above it). */
    private readonly nofileLimit: number,
  ) {}

  async prepare(record: ContainerRecord, directory: string, image: ImageRuntimeConfig): Promise<NetworkAttachment> {
    const lowerDirs = [...record.layers].reverse().map((chainId) => this.snapshots.filesPath(chainId));
    // The mount and the network each spawn host commands: made side by side, as they are taken down.
    const [rootfs, attachment] = await settleAll([mountRootfs(directory, lowerDirs, !record.autoRemove), this.attachNetwork(record)]);
    const hostname = containerHostname(record.spec, record.id);
    const networkFiles = await writeContainerEtcFiles(path.join(directory, ETC_DIRECTORY), {
      hostname,
      ipAddress: attachment.ipAddress,
      mode: record.spec.network,
    });
    await this.createVolumes(record, rootfs);
    const user = await resolveUser(rootfs, record.spec.user ?? image.User ?? undefined);
    const spec = buildOciSpec({
      id: record.id,
      spec: record.spec,
      image,
      user,
      rootfs,
      ...(attachment.netnsPath ? { netnsPath: attachment.netnsPath } : {}),
      networkFiles,
      volumesRoot: this.volumes.root,
      nofileLimit: this.nofileLimit,
    });
    await mkdir(path.join(directory, LOG_DIRECTORY), { recursive: true, mode: 0o700 });
    await Promise.all([BundleFile.pid, BundleFile.exit].map((name) => rm(path.join(directory, name), { force: true })));
    await writeFile(path.join(directory, 'config.json'), JSON.stringify(spec, null, 2), { mode: 0o600 });
    return attachment;
  }

  /** The running container's files as its processes see them: the root with its volumes and bind mounts. */
  filesystem(record: ContainerRecord, directory: string): ContainerFilesystem {
    return new ContainerFilesystem(path.join(directory, RootfsDir.mount), record.spec.readOnlyRootfs, record.spec.mounts, (name) =>
      this.volumes.directory(name),
    );
  }

  async release(record: ContainerRecord, directory: string): Promise<void> {
    await settleAll([this.network.detach(record.id), unmountRootfs(directory)]);
  }

  private async attachNetwork(record: ContainerRecord): Promise<NetworkAttachment> {
    // A run the daemon could not take down (it crashed) may have left its attachment behind.
    if (await this.network.attachment(record.id)) await this.network.detach(record.id);
    return this.network.attach(record.id, record.spec.network, record.spec.ports);
  }

  /**
   * Creates the named volumes the container mounts. A new volume starts as a copy of what the image has at
   * the mount point (ownership and modes included), as docker does: `-v data:/var/lib/app` keeps the
   * image's initial files there.
   */
  private async createVolumes(record: ContainerRecord, rootfs: string): Promise<void> {
    for (const mount of record.spec.mounts) {
      if (mount.type !== 'volume') continue;
      if (await this.volumes.create(mount.name))
        await copyImageContent(await resolveInRoot(rootfs, mount.target), this.volumes.directory(mount.name));
    }
  }
}

/** Copies a directory's content and its own owner and mode into `target`; nothing when `source` is not a directory. */
async function copyImageContent(source: string, target: string): Promise<void> {
  const stats = await lstat(source).catch(() => undefined);
  if (!stats?.isDirectory()) return;
  await runHostCommand('cp', ['-a', '--no-target-directory', source, target]);
}
