import { createWriteStream, type Stats } from 'node:fs';
import { readdir, readlink, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Header } from 'tar-stream';
import { EVERY_ENTRY, packTar, walkTree, type TarItem } from '../archive/directory-tar.js';
import { DigestingStream } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { ContentStore } from '../content/content-store.js';
import type { SnapshotFill } from '../snapshot/snapshotter.js';
import { isOpaque, isWhiteout, OPAQUE_MARKER, WHITEOUT_PREFIX } from '../unpack/overlay-whiteouts.js';

/**
 * A build step's layer: the overlay's upper directory (what the step changed, nothing else) as an OCI layer
 * tar. Overlay whiteouts (character devices 0/0) become `.wh.<name>` entries and opaque directories get a
 * `.wh..wh..opq` entry. Entries are sorted by name and headers normalised (no user or group names, no
 * access times), and with SOURCE_DATE_EPOCH no time is later than it: the same changes give the same bytes.
 */

export interface WrittenLayer {
  digest: string;
  size: number;
  diffId: string;
  mediaType: string;
  /** Bytes of the uncompressed tar (the snapshot's size). */
  uncompressedSize: number;
  /** What the layer holds besides links, devices and whiteouts: for the snapshot to flush exactly these. */
  tree: PackedTree;
}

/** The regular files and directories a layer was packed from, relative to its upper directory. */
export interface PackedTree {
  files: Array<{ relative: string; bytes: number }>;
  directories: string[];
  /** Those of `directories` that are opaque. */
  opaque: string[];
}

export interface LayerWriteOptions {
  /** Seconds since the epoch: later modification times are clamped to it. */
  sourceDateEpoch: number | undefined;
  /** A scratch file for the compressed blob before it enters the content store. */
  scratchFile: string;
  /** Whether the directory may hold opaque directories (an overlay's upper): each directory's flag is read as the walk meets it. */
  findOpaque: boolean;
}

/** Whether the step changed nothing at all (BuildKit drops such layers and marks the history entry empty). */
export async function isEmptyDirectory(directory: string): Promise<boolean> {
  return (await readdir(directory)).length === 0;
}

export async function writeLayer(upper: string, content: ContentStore, options: LayerWriteOptions): Promise<WrittenLayer> {
  const uncompressed = DigestingStream.fresh('sha256');
  const compressed = DigestingStream.fresh('sha256');
  const tree: PackedTree = { files: [], directories: [], opaque: [] };
  await pipeline(
    packTar(layerItems(upper, options.findOpaque, options.sourceDateEpoch, tree)),
    uncompressed,
    createGzip({ level: 6 }),
    compressed,
    createWriteStream(options.scratchFile),
  );
  const layer = {
    digest: compressed.digest('sha256'),
    size: compressed.bytes,
    diffId: uncompressed.digest('sha256'),
    mediaType: MediaType.ociLayerGzip,
    uncompressedSize: uncompressed.bytes,
  };
  // Digested while it was written: moved into the store, not copied there.
  await content.adopt(layer, options.scratchFile);
  return { ...layer, tree };
}

/**
 * A snapshot of the layer made by moving its upper directory into place whole. Its own files and directories
 * are named for the flush, as a pulled layer's are: a step that wrote a few files costs no syncfs of the disk.
 */
export function movedUpperFill(upper: string, layer: WrittenLayer): SnapshotFill {
  return async (directory, files) => {
    await rm(directory, { recursive: true, force: true });
    await rename(upper, directory);
    for (const relative of layer.tree.directories) files.directoryCreated(path.join(directory, relative));
    for (const { relative, bytes } of layer.tree.files) files.fileInPlace(path.join(directory, relative), bytes);
    return { size: layer.uncompressedSize };
  };
}

/**
 * The upper directory's entries as tar items, in name order: whiteouts and opaque markers in overlay's form
 * turned into OCI's. Its regular files and directories (and which are opaque) are noted in `tree` as they go by.
 */
async function* layerItems(upper: string, findOpaque: boolean, epoch: number | undefined, tree: PackedTree): AsyncGenerator<TarItem> {
  const hardlinks = new Map<string, string>();
  for await (const { relative, hostPath, stats } of walkTree(upper, EVERY_ENTRY)) {
    const header = baseHeader(relative, stats, epoch);
    if (isWhiteout(stats)) {
      const name = path.posix.basename(relative);
      yield emptyFile({ ...header, name: `${parentOf(relative)}${WHITEOUT_PREFIX}${name}` });
    } else if (stats.isDirectory()) {
      tree.directories.push(relative);
      yield { header: { ...header, name: `${relative}/`, type: 'directory' }, contentPath: undefined };
      if (findOpaque && isOpaque(hostPath)) {
        tree.opaque.push(relative);
        yield emptyFile({ ...header, name: `${relative}/${OPAQUE_MARKER}` });
      }
    } else {
      const leaf = await leafItem(hostPath, header, stats, hardlinks);
      if (leaf?.contentPath !== undefined) tree.files.push({ relative, bytes: stats.size });
      if (leaf) yield leaf;
    }
  }
}

function emptyFile(header: Partial<Header> & { name: string }): TarItem {
  return { header: { ...header, type: 'file', size: 0 }, contentPath: undefined };
}

async function leafItem(
  hostPath: string,
  header: Partial<Header> & { name: string },
  stats: Stats,
  hardlinks: Map<string, string>,
): Promise<TarItem | undefined> {
  if (stats.isSymbolicLink()) return { header: { ...header, type: 'symlink', linkname: await readlink(hostPath) }, contentPath: undefined };
  if (stats.isFIFO()) return { header: { ...header, type: 'fifo' }, contentPath: undefined };
  if (stats.isCharacterDevice() || stats.isBlockDevice()) {
    const device = { devmajor: Math.floor(stats.rdev / 256) & 0xfff, devminor: (stats.rdev & 0xff) | ((stats.rdev >> 12) & 0xfff00) };
    return {
      header: { ...header, ...device, type: stats.isCharacterDevice() ? 'character-device' : 'block-device' },
      contentPath: undefined,
    };
  }
  if (!stats.isFile()) return undefined; // sockets have no tar form
  const inode = `${stats.dev}:${stats.ino}`;
  const first = stats.nlink > 1 ? hardlinks.get(inode) : undefined;
  if (first !== undefined) return { header: { ...header, type: 'link', linkname: first }, contentPath: undefined };
  if (stats.nlink > 1) hardlinks.set(inode, header.name);
  return { header: { ...header, type: 'file', size: stats.size }, contentPath: hostPath };
}

function parentOf(entryPath: string): string {
  const slash = entryPath.lastIndexOf('/');
  return slash === -1 ? '' : entryPath.slice(0, slash + 1);
}

function baseHeader(name: string, stats: Stats, epoch: number | undefined): Partial<Header> & { name: string } {
  const seconds = Math.floor(stats.mtimeMs / 1000);
  const mtime = new Date((epoch !== undefined && seconds > epoch ? epoch : seconds) * 1000);
  return { name, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, uname: '', gname: '', mtime };
}
