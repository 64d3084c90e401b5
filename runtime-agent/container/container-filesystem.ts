import path from 'node:path';
import { archivePathComponents, resolveComponents } from '../unpack/rooted-path.js';
import type { MountSpec } from './container-spec.js';

/** A container path `cp` cannot use: on a mount the host cannot reach. */
export class ContainerPathError extends Error {}

interface MountedDirectory {
  target: string[];
  /** Where the mount's content is on the host; undefined for a tmpfs, which lives in the container's mount namespace only. */
  source: string | undefined;
  readOnly: boolean;
}

export interface ContainerPath {
  hostPath: string;
  /** The host directory the path is confined to: the root, or the source of the mount it is on. */
  confinedTo: string;
  readOnly: boolean;
}

/**
 * A running container's files as its processes see them, from the host: its root filesystem (the overlay
 * mount) with its volumes and bind mounts laid over it, so `cp` reaches a volume's content rather than the
 * directory the mount hides. Symlinks are resolved inside this view (resolveComponents), never by the kernel.
 */
export class ContainerFilesystem {
  private readonly mounts: MountedDirectory[];

  constructor(
    private readonly root: string,
    private readonly rootReadOnly: boolean,
    mounts: readonly MountSpec[],
    volumeDirectory: (name: string) => string,
  ) {
    this.mounts = mounts
      .map((mount) => ({
        target: archivePathComponents(mount.target).components,
        source: mount.type === 'volume' ? volumeDirectory(mount.name) : mount.type === 'bind' ? mount.source : undefined,
        readOnly: mount.type !== 'tmpfs' && mount.readOnly,
      }))
      .sort((a, b) => b.target.length - a.target.length);
  }

  /** `target` with its symlinks resolved in the container; the last one followed only when `followLast`. */
  async resolve(target: string, followLast: boolean): Promise<ContainerPath> {
    const base = path.posix.basename(target);
    const follow = followLast || base === '' || base === '.' || base === '..';
    const components = follow
      ? await resolveComponents(target, (parts) => this.hostPathOf(parts))
      : [...(await resolveComponents(path.posix.dirname(target), (parts) => this.hostPathOf(parts))), base];
    const mount = this.mountOf(components);
    return {
      hostPath: this.hostPathOf(components),
      confinedTo: mount?.source ?? this.root,
      readOnly: mount ? mount.readOnly : this.rootReadOnly,
    };
  }

  private hostPathOf(components: readonly string[]): string {
    const mount = this.mountOf(components);
    if (!mount) return path.join(this.root, ...components);
    if (mount.source === undefined)
      throw new ContainerPathError(`/${mount.target.join('/')} is a tmpfs mount, which cp cannot reach from the host`);
    return path.join(mount.source, ...components.slice(mount.target.length));
  }

  private mountOf(components: readonly string[]): MountedDirectory | undefined {
    return this.mounts.find((mount) => mount.target.every((part, index) => components[index] === part));
  }
}
