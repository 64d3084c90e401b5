import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar, { type Header, type Pack } from 'tar-stream';
import { DigestingStream } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { ContentStore } from '../content/content-store.js';
import { OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX } from '../unpack/overlay-whiteouts.js';

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
}

export interface LayerWriteOptions {
  /** Seconds since the epoch: later modification times are clamped to it. */
  sourceDateEpoch: number | undefined;
  /** A scratch file for the compressed blob before it enters the content store. */
  scratchFile: string;
}

/** Whether the step changed nothing at all (BuildKit drops such layers and marks the history entry empty). */
export async function isEmptyDirectory(directory: string): Promise<boolean> {
  return (await readdir(directory)).length === 0;
}

export async function writeLayer(upper: string, content: ContentStore, options: LayerWriteOptions): Promise<WrittenLayer> {
  const opaque = await opaqueDirectories(upper);
  const pack = tar.pack();
  const uncompressed = DigestingStream.fresh('sha256');
  const compressed = DigestingStream.fresh('sha256');
  const packing = packDirectory(pack, upper, opaque, options.sourceDateEpoch).then(
    () => pack.finalize(),
    (error: Error) => pack.destroy(error),
  );
  await Promise.all([
    pipeline(Readable.from(pack), uncompressed, createGzip({ level: 6 }), compressed, createWriteStream(options.scratchFile)),
    packing,
  ]);
  const layer = {
    digest: compressed.digest('sha256'),
    size: compressed.bytes,
    diffId: uncompressed.digest('sha256'),
    mediaType: MediaType.ociLayerGzip,
    uncompressedSize: uncompressed.bytes,
  };
  await content.ingest(layer, async (offset) => ({ stream: createReadStream(options.scratchFile, { start: offset }), offset }));
  await rm(options.scratchFile, { force: true });
  return layer;
}

/**
 * Directories marked opaque, found in one pass: `getfattr -R` prints only the entries that have the attribute
 * (and exits 1 because others lack it, which says nothing here).
 */
async function opaqueDirectories(upper: string): Promise<Set<string>> {
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
    execFile('getfattr', ['-R', '-P', '--absolute-names', '-n', OPAQUE_XATTR, upper], { maxBuffer: 64 * 1024 * 1024 }, (error, out) =>
      error && (error as NodeJS.ErrnoException).code === 'ENOENT' ? reject(error) : resolve({ stdout: out }),
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

async function packDirectory(pack: Pack, upper: string, opaque: Set<string>, epoch: number | undefined): Promise<void> {
  const hardlinks = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    const directory = path.join(upper, relative);
    const names = (await readdir(directory)).sort();
    for (const name of names) {
      const entryPath = relative === '' ? name : `${relative}/${name}`;
      const hostPath = path.join(upper, entryPath);
      const stats = await lstat(hostPath);
      if (stats.isCharacterDevice() && stats.rdev === 0) {
        await addEntry(pack, { ...baseHeader(`${parentOf(entryPath)}${WHITEOUT_PREFIX}${name}`, stats, epoch), type: 'file', size: 0 });
        continue;
      }
      if (stats.isDirectory()) {
        await addEntry(pack, { ...baseHeader(`${entryPath}/`, stats, epoch), type: 'directory' });
        if (opaque.has(hostPath))
          await addEntry(pack, { ...baseHeader(`${entryPath}/${OPAQUE_MARKER}`, stats, epoch), type: 'file', size: 0 });
        await walk(entryPath);
        continue;
      }
      await addLeaf(pack, hostPath, entryPath, stats, epoch, hardlinks);
    }
  };
  await walk('');
}

async function addLeaf(
  pack: Pack,
  hostPath: string,
  name: string,
  stats: Stats,
  epoch: number | undefined,
  hardlinks: Map<string, string>,
): Promise<void> {
  const header = baseHeader(name, stats, epoch);
  if (stats.isSymbolicLink()) return addEntry(pack, { ...header, type: 'symlink', linkname: await readlink(hostPath) });
  if (stats.isFIFO()) return addEntry(pack, { ...header, type: 'fifo' });
  if (stats.isCharacterDevice() || stats.isBlockDevice()) {
    const device = { devmajor: Math.floor(stats.rdev / 256) & 0xfff, devminor: (stats.rdev & 0xff) | ((stats.rdev >> 12) & 0xfff00) };
    return addEntry(pack, { ...header, ...device, type: stats.isCharacterDevice() ? 'character-device' : 'block-device' });
  }
  if (!stats.isFile()) return; // sockets have no tar form
  const inode = `${stats.dev}:${stats.ino}`;
  const first = stats.nlink > 1 ? hardlinks.get(inode) : undefined;
  if (first !== undefined) return addEntry(pack, { ...header, type: 'link', linkname: first });
  if (stats.nlink > 1) hardlinks.set(inode, name);
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ ...header, type: 'file', size: stats.size }, (error) => (error ? reject(error) : resolve()));
    createReadStream(hostPath).once('error', reject).pipe(entry);
  });
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

/** An entry with no content: a `file` one (whiteouts, opaque markers) is given its empty body, or tar-stream waits for it. */
function addEntry(pack: Pack, header: Partial<Header> & { name: string }): Promise<void> {
  const done = (resolve: () => void, reject: (error: Error) => void) => (error?: Error | null) => (error ? reject(error) : resolve());
  return new Promise((resolve, reject) =>
    header.type === 'file' ? pack.entry(header, Buffer.alloc(0), done(resolve, reject)) : pack.entry(header, done(resolve, reject)),
  );
}
