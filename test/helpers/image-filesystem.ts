import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar, { type Header } from 'tar-stream';
import { ACCEPTED_MANIFEST_TYPES, isIndexMediaType } from '../../oci/media-types.js';

/**
 * What an image looks like to someone who runs it: the filesystem its layers add up to and the runtime
 * fields of its config. Two builders that made "the same image" agree on both, whatever their layer split,
 * timestamps or history say. Layers are read as streams, one entry at a time; file contents are hashed as
 * they pass.
 */

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'character-device' | 'block-device' | 'fifo';

export interface FilesystemEntry {
  /** Absolute, normalised (`/etc/passwd`). */
  path: string;
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky (12 bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of a file's (or a hard link's target's) content; 0 for anything else. */
  size: number;
  /** sha256 of a file's (or hard link target's) content, null for anything else. */
  contentDigest: string | null;
  /** A symlink's target as written, or the absolute path a hard link points at. */
  linkTarget: string | null;
  /** Extended attributes (PAX `SCHILY.xattr.*` records), sorted by name. */
  xattrs: Record<string, string>;
}

/** The config fields a container runtime reads; absent, null and empty maps all read as null. */
export interface ImageConfigFields {
  Env: string[] | null;
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  WorkingDir: string | null;
  User: string | null;
  ExposedPorts: Record<string, unknown> | null;
  Volumes: Record<string, unknown> | null;
  Labels: Record<string, string> | null;
  StopSignal: string | null;
  Healthcheck: Record<string, unknown> | null;
  Shell: string[] | null;
  OnBuild: string[] | null;
}

export const CONFIG_FIELDS: ReadonlyArray<keyof ImageConfigFields> = [
  'Env',
  'Cmd',
  'Entrypoint',
  'WorkingDir',
  'User',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'StopSignal',
  'Healthcheck',
  'Shell',
  'OnBuild',
];

/** An image wherever it is stored: its config document and a way to stream each layer, bottom first. */
export interface ImageSource {
  /** Where it came from, for messages. */
  description: string;
  config: Record<string, unknown>;
  /** One opener per layer; a layer may be compressed (gzip) or not. */
  layers: Array<() => Promise<Readable>>;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { os: string; architecture: string };
}

interface ManifestDocument {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/** How to reach content by digest: manifests and configs whole, layers as streams. */
interface BlobReader {
  manifest(digest: string): Promise<Buffer>;
  read(digest: string): Promise<Buffer>;
  open(digest: string): Promise<Readable>;
}

const DEFAULT_PLATFORM = { os: 'linux', architecture: 'amd64' };

/** Follows an index to its linux/amd64 image (or its only image), then reads the image's config. */
async function imageFromManifest(description: string, manifestDigest: string, blobs: BlobReader): Promise<ImageSource> {
  let manifest = JSON.parse((await blobs.manifest(manifestDigest)).toString('utf8')) as ManifestDocument;
  if (manifest.manifests && (manifest.mediaType === undefined || isIndexMediaType(manifest.mediaType))) {
    const candidates = manifest.manifests;
    const chosen =
      candidates.length === 1
        ? candidates[0]
        : candidates.find(
            (entry) => entry.platform?.os === DEFAULT_PLATFORM.os && entry.platform.architecture === DEFAULT_PLATFORM.architecture,
          );
    if (!chosen) throw new Error(`${description}: the index has no ${DEFAULT_PLATFORM.os}/${DEFAULT_PLATFORM.architecture} image`);
    manifest = JSON.parse((await blobs.manifest(chosen.digest)).toString('utf8')) as ManifestDocument;
  }
  if (!manifest.config || !manifest.layers) throw new Error(`${description}: ${manifestDigest} is not an image manifest`);
  const config = JSON.parse((await blobs.read(manifest.config.digest)).toString('utf8')) as Record<string, unknown>;
  return { description, config, layers: manifest.layers.map((layer) => () => blobs.open(layer.digest)) };
}

function blobDirectoryReader(blobsDir: string): BlobReader {
  const file = (digest: string) => path.join(blobsDir, ...digest.split(':'));
  return {
    manifest: (digest) => readFile(file(digest)),
    read: (digest) => readFile(file(digest)),
    open: async (digest) => createReadStream(file(digest)),
  };
}

const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** An OCI image layout (`oci:DIR[:TAG]` of skopeo/buildah): the image tagged `tag`, or its only one. */
export async function openOciLayout(dir: string, tag?: string): Promise<ImageSource> {
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<Descriptor & { annotations?: Record<string, string> }>;
  };
  const entry =
    tag === undefined && index.manifests.length === 1
      ? index.manifests[0]
      : index.manifests.find((manifest) => manifest.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (!entry) throw new Error(`${dir}/index.json has no image ${tag === undefined ? '(and more than one entry)' : `tagged ${tag}`}`);
  return imageFromManifest(`oci:${dir}`, entry.digest, blobDirectoryReader(path.join(dir, 'blobs')));
}

/**
 * A content store laid out as `<root>/blobs/<algorithm>/<hex>` (the agent's `<data-dir>/content`, or an OCI
 * layout's root) holding the image whose manifest (or index) is `manifestDigest`.
 */
export function openContentStore(root: string, manifestDigest: string): Promise<ImageSource> {
  return imageFromManifest(`${root}@${manifestDigest}`, manifestDigest, blobDirectoryReader(path.join(root, 'blobs')));
}

/** An image in a registry (plain http, no auth: test registries on 127.0.0.1). */
export async function openRegistryImage(baseUrl: string, repository: string, reference: string): Promise<ImageSource> {
  const get = async (kind: 'manifests' | 'blobs', ref: string) => {
    const url = `${baseUrl}/v2/${repository}/${kind}/${ref}`;
    const response = await fetch(url, { headers: { accept: ACCEPTED_MANIFEST_TYPES.join(', ') } });
    if (!response.ok || !response.body) throw new Error(`GET ${url}: ${response.status}`);
    return response;
  };
  const whole = async (response: Response) => Buffer.from(await response.arrayBuffer());
  const blobs: BlobReader = {
    manifest: async (digest) => whole(await get('manifests', digest)),
    read: async (digest) => whole(await get('blobs', digest)),
    open: async (digest) => Readable.fromWeb((await get('blobs', digest)).body as never),
  };
  const root = await get('manifests', reference);
  const digest = root.headers.get('docker-content-digest');
  await root.body?.cancel();
  if (!digest) throw new Error(`${baseUrl}/v2/${repository}/manifests/${reference}: no Docker-Content-Digest header`);
  return imageFromManifest(`${baseUrl}/${repository}:${reference}`, digest, blobs);
}

const TAR_BLOCK = 512;

interface ArchiveMember {
  offset: number;
  size: number;
}

/**
 * A `docker save` archive. Its members are located in one streaming pass (tar-stream reports each entry's
 * data offset), then each layer is streamed straight out of the archive file: nothing is extracted.
 */
export async function openDockerArchive(archive: string): Promise<ImageSource> {
  const members = new Map<string, ArchiveMember>();
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(archive), extract);
  for await (const entry of extract) {
    // `offset` is where the entry's own 512-byte header starts; its data follows.
    members.set(path.posix.normalize(entry.header.name), { offset: entry.offset + TAR_BLOCK, size: entry.header.size });
    entry.resume();
  }
  await feeding;
  const member = (name: string) => {
    const found = members.get(path.posix.normalize(name));
    if (!found) throw new Error(`${archive} has no ${name}`);
    return found;
  };
  const open = (name: string) => {
    const { offset, size } = member(name);
    return size === 0 ? Readable.from([]) : createReadStream(archive, { start: offset, end: offset + size - 1 });
  };
  const readMember = async (name: string) => {
    const chunks: Buffer[] = [];
    for await (const chunk of open(name)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const manifest = JSON.parse((await readMember('manifest.json')).toString('utf8')) as Array<{ Config: string; Layers: string[] }>;
  if (manifest.length !== 1) throw new Error(`${archive} holds ${manifest.length} images; save exactly one`);
  const image = manifest[0]!;
  const config = JSON.parse((await readMember(image.Config)).toString('utf8')) as Record<string, unknown>;
  return { description: `docker-archive:${archive}`, config, layers: image.Layers.map((layer) => async () => open(layer)) };
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(chunk: Buffer, magic: readonly number[]): boolean {
  return magic.every((byte, index) => chunk[index] === byte);
}

/** The layer's tar stream: gunzipped when it starts with gzip's magic, as is otherwise. */
async function tarStreamOf(layer: Readable): Promise<Readable> {
  const iterator = layer[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iterator.next();
  const whole = Readable.from(
    (async function* () {
      if (!first.done) yield first.value;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    })(),
  );
  if (!first.done && startsWith(first.value, ZSTD_MAGIC)) throw new Error('zstd layers are not supported by this helper');
  if (!first.done && startsWith(first.value, GZIP_MAGIC)) return whole.pipe(createGunzip());
  return whole;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const XATTR_PREFIX = 'SCHILY.xattr.';

/** The filesystem the image's layers add up to, sorted by path. */
export async function flattenImage(image: ImageSource): Promise<FilesystemEntry[]> {
  const tree = new LayeredTree();
  for (const [index, openLayer] of image.layers.entries()) {
    try {
      await tree.apply(await tarStreamOf(await openLayer()));
    } catch (error) {
      throw new Error(`${image.description}: layer ${index + 1}: ${(error as Error).message}`, { cause: error });
    }
  }
  return tree.entries();
}

/** The filesystem being assembled: each layer's entries on top, its whiteouts removing what lies below. */
export class LayeredTree {
  private readonly tree = new Map<string, FilesystemEntry>();

  entries(): FilesystemEntry[] {
    return [...this.tree.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Applies one uncompressed layer tar. Whiteouts only hide lower layers, whatever their order in the tar. */
  async apply(layer: Readable): Promise<void> {
    const addedHere = new Set<string>();
    const extract = tar.extract();
    const feeding = pipeline(layer, extract);
    feeding.catch(() => undefined);
    for await (const entry of extract) {
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of entry) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      this.applyEntry(entry.header, { size, digest: `sha256:${hash.digest('hex')}` }, addedHere);
    }
    await feeding;
  }

  private applyEntry(header: Header, content: { size: number; digest: string }, addedHere: Set<string>): void {
    const entryPath = normalise(header.name);
    if (entryPath === '/') return;
    const base = path.posix.basename(entryPath);
    const parent = path.posix.dirname(entryPath);
    if (base === OPAQUE_MARKER) return this.removeBelow(parent, false, addedHere);
    if (base.startsWith(WHITEOUT_PREFIX))
      return this.removeBelow(path.posix.join(parent, base.slice(WHITEOUT_PREFIX.length)), true, addedHere);
    const type = entryTypeOf(header.type);
    if (type !== 'directory' && this.tree.get(entryPath)?.type === 'directory') this.removeBelow(entryPath, false, addedHere);
    addedHere.add(entryPath);
    this.tree.set(entryPath, this.entryOf(entryPath, type, header, content));
  }

  private entryOf(entryPath: string, type: EntryType, header: Header, content: { size: number; digest: string }): FilesystemEntry {
    const base = { path: entryPath, type, mode: header.mode & 0o7777, uid: header.uid, gid: header.gid, xattrs: xattrsOf(header) };
    if (type === 'file') return { ...base, size: content.size, contentDigest: content.digest, linkTarget: null };
    if (type === 'symlink') return { ...base, size: 0, contentDigest: null, linkTarget: header.linkname };
    if (type === 'hardlink') {
      const targetPath = normalise(header.linkname);
      const target = this.tree.get(targetPath);
      if (!target || target.type !== 'file') throw new Error(`hard link ${entryPath} points at ${targetPath}, which is not a file here`);
      return { ...base, size: target.size, contentDigest: target.contentDigest, linkTarget: targetPath };
    }
    return { ...base, size: 0, contentDigest: null, linkTarget: null };
  }

  /** Removes `target` itself (when `self`) and everything under it that a lower layer put there. */
  private removeBelow(target: string, self: boolean, addedHere: ReadonlySet<string>): void {
    const prefix = target === '/' ? '/' : `${target}/`;
    for (const key of [...this.tree.keys()]) {
      if (addedHere.has(key)) continue;
      if ((self && key === target) || key.startsWith(prefix)) this.tree.delete(key);
    }
  }
}

function normalise(name: string): string {
  const normalised = path.posix.normalize(`/${name}`);
  return normalised.length > 1 && normalised.endsWith('/') ? normalised.slice(0, -1) : normalised;
}

function entryTypeOf(type: Header['type']): EntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'link':
      return 'hardlink';
    case 'symlink':
    case 'directory':
    case 'character-device':
    case 'block-device':
    case 'fifo':
      return type;
    default:
      throw new Error(`unexpected tar entry type ${String(type)}`);
  }
}

function xattrsOf(header: Header): Record<string, string> {
  const pax = (header.pax ?? {}) as Record<string, string>;
  const names = Object.keys(pax)
    .filter((key) => key.startsWith(XATTR_PREFIX))
    .sort();
  return Object.fromEntries(names.map((key) => [key.slice(XATTR_PREFIX.length), pax[key]!]));
}

/** The runtime fields of an image config (`config` in an OCI/Docker config document). */
export function imageConfigFields(image: ImageSource): ImageConfigFields {
  const config = (image.config['config'] ?? {}) as Record<string, unknown>;
  return Object.fromEntries(CONFIG_FIELDS.map((field) => [field, emptyAsNull(config[field])])) as unknown as ImageConfigFields;
}

function emptyAsNull(value: unknown): unknown {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) return null;
  return value;
}

/** One field that differs, readably: `/etc/x: mode 0644 (docker) vs 0600 (berth)`. */
export function describeDifference(where: string, field: string, left: unknown, right: unknown, names: readonly [string, string]): string {
  return `${where}: ${field} ${show(field, left)} (${names[0]}) vs ${show(field, right)} (${names[1]})`;
}

function show(field: string, value: unknown): string {
  if (field === 'mode' && typeof value === 'number') return `0${value.toString(8)}`;
  return canonical(value);
}

/** JSON with object keys sorted: two builders may write a map's keys in different orders. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

const ENTRY_FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'contentDigest', 'linkTarget', 'xattrs'] as const;

/** Every difference between two flattened filesystems, one line each; empty when they are the same. */
export function compareFilesystems(
  left: readonly FilesystemEntry[],
  right: readonly FilesystemEntry[],
  names: readonly [string, string],
): string[] {
  const rightByPath = new Map(right.map((entry) => [entry.path, entry]));
  const leftPaths = new Set(left.map((entry) => entry.path));
  const differences: string[] = [];
  for (const entry of left) {
    const other = rightByPath.get(entry.path);
    if (!other) {
      differences.push(`${entry.path}: only in ${names[0]} (${entry.type})`);
      continue;
    }
    for (const field of ENTRY_FIELDS) {
      if (canonical(entry[field]) !== canonical(other[field])) {
        differences.push(describeDifference(entry.path, field, entry[field], other[field], names));
      }
    }
  }
  for (const entry of right) if (!leftPaths.has(entry.path)) differences.push(`${entry.path}: only in ${names[1]} (${entry.type})`);
  return differences;
}

/** Every config field that differs between two images, one line each. */
export function compareConfigs(left: ImageConfigFields, right: ImageConfigFields, names: readonly [string, string]): string[] {
  return CONFIG_FIELDS.filter((field) => canonical(left[field]) !== canonical(right[field])).map((field) =>
    describeDifference('config', field, left[field], right[field], names),
  );
}
