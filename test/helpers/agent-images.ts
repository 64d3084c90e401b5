import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { digestOf } from '../../oci/digest.js';
import { MediaType, OCI_LAYER_TYPE, type Compression } from '../../oci/media-types.js';
import { run } from './exec.js';

/** Test images for the runtime agent: tar layers built entry by entry, written as OCI layouts, pushed with skopeo. */

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface Layer {
  /** The uncompressed tar. */
  tar: Buffer;
  compression: Compression;
  blob: Buffer;
  digest: string;
  diffId: string;
  mediaType: string;
}

export interface TestImage {
  layers: Layer[];
  platform?: { os: string; architecture: string; variant?: string };
  /** The image config's `config` (Cmd, Env, Healthcheck, ...); empty when absent. */
  config?: Record<string, unknown>;
}

/** A tar of exactly these entries, hostile ones included: nothing is normalized. */
export async function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = {
      name: entry.name,
      type,
      mode: entry.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: new Date('2024-01-02T03:04:05Z'),
      linkname: entry.linkname,
      ...(type === 'character-device' || type === 'block-device' ? { devmajor: 1, devminor: 3 } : {}),
    };
    if (type === 'file') pack.entry(header, entry.content ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** A runnable root: the host's static busybox with a symlink per applet named, and the usual empty directories. */
export async function busyboxEntries(applets: readonly string[]): Promise<TarEntry[]> {
  const directories = ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp'].map((name): TarEntry => ({ name, type: 'directory' }));
  const links = applets.map((name): TarEntry => ({ name: `bin/${name}`, type: 'symlink', linkname: 'busybox' }));
  return [...directories, { name: 'bin/busybox', content: await readFile('/bin/busybox'), mode: 0o755 }, ...links];
}

export async function compress(bytes: Buffer, compression: Compression): Promise<Buffer> {
  if (compression === 'none') return bytes;
  if (compression === 'gzip') return gzipSync(bytes);
  return pipeThrough('zstd', ['-q', '-c', '-3'], bytes);
}

export async function layerOf(entries: readonly TarEntry[], compression: Compression): Promise<Layer> {
  return layerOfTar(await tarOf(entries), compression);
}

/** A layer of a tar made elsewhere (e.g. by GNU tar). */
export async function layerOfTar(tarBytes: Buffer, compression: Compression): Promise<Layer> {
  const blob = await compress(tarBytes, compression);
  return { tar: tarBytes, compression, blob, digest: digestOf(blob), diffId: digestOf(tarBytes), mediaType: OCI_LAYER_TYPE[compression] };
}

interface Written {
  mediaType: string;
  digest: string;
  size: number;
}

/** Writes a blob into an OCI layout's blobs/sha256 and returns its descriptor. */
async function writeBlob(layout: string, bytes: Buffer | string, mediaType: string): Promise<Written> {
  const buffer = Buffer.from(bytes);
  const digest = digestOf(buffer);
  await mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), buffer);
  return { mediaType, digest, size: buffer.length };
}

async function writeImage(layout: string, image: TestImage): Promise<Written & { configDigest: string }> {
  const platform = image.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = await writeBlob(
    layout,
    JSON.stringify({
      created: '2024-01-02T03:04:05Z',
      ...platform,
      config: image.config ?? {},
      rootfs: { type: 'layers', diff_ids: image.layers.map((layer) => layer.diffId) },
    }),
    MediaType.ociConfig,
  );
  const layers = [];
  for (const layer of image.layers) layers.push(await writeBlob(layout, layer.blob, layer.mediaType));
  const manifest = await writeBlob(
    layout,
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers }),
    MediaType.ociManifest,
  );
  return { ...manifest, configDigest: config.digest };
}

async function writeIndexJson(layout: string, top: Written, tag: string): Promise<void> {
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
}

/** An OCI layout holding one image under `tag`; returns the manifest and config digests. */
export async function writeImageLayout(
  layout: string,
  tag: string,
  image: TestImage,
): Promise<{ manifestDigest: string; configDigest: string }> {
  const manifest = await writeImage(layout, image);
  await writeIndexJson(layout, manifest, tag);
  return { manifestDigest: manifest.digest, configDigest: manifest.configDigest };
}

/** An OCI layout holding an image index over several platform images; returns each image's config digest. */
export async function writeIndexLayout(
  layout: string,
  tag: string,
  images: TestImage[],
): Promise<{ indexDigest: string; configDigests: string[] }> {
  const written = [];
  for (const image of images) written.push({ ...(await writeImage(layout, image)), platform: image.platform });
  const index = await writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: written.map(({ mediaType, digest, size, platform }) => ({ mediaType, digest, size, platform })),
    }),
    MediaType.ociIndex,
  );
  await writeIndexJson(layout, index, tag);
  return { indexDigest: index.digest, configDigests: written.map((image) => image.configDigest) };
}

/** `skopeo copy` of a layout's tag to a plain-http registry, keeping layers and their compression as they are. */
export async function pushLayout(
  layout: string,
  tag: string,
  destination: string,
  credentials?: { username: string; password: string },
): Promise<void> {
  const creds = credentials ? ['--dest-creds', `${credentials.username}:${credentials.password}`] : [];
  await run('skopeo', [
    'copy',
    '--all',
    '--quiet',
    '--preserve-digests',
    '--dest-tls-verify=false',
    ...creds,
    `oci:${layout}:${tag}`,
    `docker://${destination}`,
  ]);
}

function pipeThrough(command: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${command} exited with ${code}`))));
    child.stdin.end(input);
  });
}
