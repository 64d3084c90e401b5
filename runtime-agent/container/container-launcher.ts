import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ImageRuntimeConfig } from '../image/manifest.js';
import { writeContainerEtcFiles } from '../network/etc-files.js';
import type { ContainerNetwork, NetworkAttachment } from '../network/container-network.js';
import { BundleFile } from '../shim/shim-protocol.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ContainerRecord } from './container-record.js';
import { buildOciSpec, containerHostname, volumeDirectory } from './oci-spec.js';
import { mountRootfs, unmountRootfs } from './rootfs.js';
import { resolveUser } from './user-lookup.js';

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
    private readonly volumesRoot: string,
    /** The host's hard RLIMIT_NOFILE: what every container gets (nothing may ask above it). */
    private readonly nofileLimit: number,
  ) {}

  async prepare(record: ContainerRecord, directory: string, image: ImageRuntimeConfig): Promise<NetworkAttachment> {
    const lowerDirs = [...record.layers].reverse().map((chainId) => this.snapshots.filesPath(chainId));
    const rootfs = await mountRootfs(directory, lowerDirs);
    // A run the daemon could not take down (it crashed) may have left its attachment behind.
    if (await this.network.attachment(record.id)) await this.network.detach(record.id);
    const attachment = await this.network.attach(record.id, record.spec.network, record.spec.ports);
    const hostname = containerHostname(record.spec, record.id);
    const networkFiles = await writeContainerEtcFiles(path.join(directory, ETC_DIRECTORY), { hostname, ipAddress: attachment.ipAddress, mode: record.spec.network });
    await this.createVolumes(record);
    const user = await resolveUser(rootfs, record.spec.user ?? image.User ?? undefined);
    const spec = buildOciSpec({
      id: record.id,
      spec: record.spec,
      image,
      user,
      rootfs,
      ...(attachment.netnsPath ? { netnsPath: attachment.netnsPath } : {}),
      networkFiles,
      volumesRoot: this.volumesRoot,
      nofileLimit: this.nofileLimit,
    });
    await mkdir(path.join(directory, LOG_DIRECTORY), { recursive: true, mode: 0o700 });
    await Promise.all([BundleFile.pid, BundleFile.exit].map((name) => rm(path.join(directory, name), { force: true })));
    await writeFile(path.join(directory, 'config.json'), JSON.stringify(spec, null, 2), { mode: 0o600 });
    return attachment;
  }

  async release(record: ContainerRecord, directory: string): Promise<void> {
    await this.network.detach(record.id);
    await unmountRootfs(directory);
  }

  private async createVolumes(record: ContainerRecord): Promise<void> {
    for (const mount of record.spec.mounts) {
      if (mount.type === 'volume') await mkdir(volumeDirectory(this.volumesRoot, mount.name), { recursive: true, mode: 0o755 });
    }
  }
}
