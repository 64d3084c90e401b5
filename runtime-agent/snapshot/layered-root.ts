import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { isOpaque, isWhiteout } from '../unpack/overlay-whiteouts.js';
import { resolveComponents } from '../unpack/rooted-path.js';

/**
 * What an overlay of snapshots shows, read from the snapshots themselves without mounting it: the entry at a
 * path is the topmost layer's, unless a layer above hides it (a whiteout, a non-directory on the way, or an
 * opaque directory). A build's RUN step has its overlay mounted by the runtime, inside the container's own
 * mount namespace (nothing to unmount after), and needs only a few paths looked at beforehand (/etc/passwd
 * and /etc/group, its mount points): this spares a `mount` and an `umount` process per step.
 */
export class LayeredRoot {
  constructor(
    private readonly layersTopFirst: readonly string[],
    private readonly opaque: OpaqueLookup,
  ) {}

  /** The host path of the entry the overlay would show at `components` (a symlink there is not followed), or undefined. */
  async locate(components: readonly string[]): Promise<string | undefined> {
    for (const layer of this.layersTopFirst) {
      const found = await entryInLayer(layer, components);
      if (found.kind === 'entry') return found.hostPath;
      if (found.kind === 'hidden' || (await this.opaque.anyOpaque(found.directories))) return undefined;
    }
    return undefined;
  }

  /** `target` as the container would reach it, every symlink on the way followed inside the root; undefined when absent. */
  async hostPath(target: string): Promise<string | undefined> {
    return this.locate(await resolveComponents(target, (components) => this.locate(components)));
  }

  /**
   * Whether an entry `locate` found (its host path) is the only one at its path in every layer: no layer below
   * adds to a directory there, so the overlay shows that layer's tree beneath it as it is.
   */
  async aloneInItsLayer(hostPath: string): Promise<boolean> {
    const own = this.layersTopFirst.find((layer) => hostPath.startsWith(`${layer}${path.sep}`));
    if (own === undefined) return false;
    const components = path.relative(own, hostPath).split(path.sep);
    for (const layer of this.layersTopFirst) if (layer !== own && (await entryInLayer(layer, components)).kind !== 'absent') return false;
    return true;
  }
}

type LayerLookup = { kind: 'entry'; hostPath: string } | { kind: 'hidden' } | { kind: 'absent'; directories: string[] };

/**
 * The layer's own entry at `components`; else whether it hides the path from the layers below (a whiteout or
 * a non-directory on the way), or lets them show it unless one of its `directories` on the way is opaque.
 */
async function entryInLayer(layer: string, components: readonly string[]): Promise<LayerLookup> {
  const directories: string[] = [];
  let current = layer;
  for (const [depth, component] of components.entries()) {
    current = path.join(current, component);
    const stats = await lstat(current).catch(() => undefined);
    if (!stats) return { kind: 'absent', directories };
    if (isWhiteout(stats)) return { kind: 'hidden' };
    if (depth === components.length - 1) break;
    if (!stats.isDirectory()) return { kind: 'hidden' };
    directories.push(current);
  }
  return { kind: 'entry', hostPath: current };
}

/** Whether any of a lookup's directories is opaque. */
export interface OpaqueLookup {
  anyOpaque(directories: readonly string[]): Promise<boolean>;
}

/** Directories remembered: about a few hundred bytes each. */
const MAX_REMEMBERED = 20_000;

/**
 * Whether snapshot directories are opaque, each asked once: a snapshot never changes, and most lookups meet
 * none (a path is usually found in the first layer that has any of it).
 */
export class OpaqueMarks implements OpaqueLookup {
  private readonly known = new Map<string, boolean>();

  anyOpaque(directories: readonly string[]): Promise<boolean> {
    for (const directory of directories) if (!this.known.has(directory)) this.learn(directory, isOpaque(directory));
    return Promise.resolve(directories.some((directory) => this.known.get(directory) === true));
  }

  /** Whether a snapshot directory is opaque, known without asking (its layer was just packed from it). */
  learn(directory: string, opaque: boolean): void {
    this.known.set(directory, opaque);
    if (this.known.size > MAX_REMEMBERED) this.known.delete(this.known.keys().next().value as string);
  }
}
