import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Compression } from '../../oci/media-types.js';
import { decompressor } from '../unpack/decompression.js';
import { applyLayerTar } from '../unpack/layer-applier.js';
import { DockerfileError } from './dockerfile.js';
import type { ContextSource } from './build-context.js';
import type { CopyItem } from './file-copier.js';

/**
 * What ADD does beyond COPY: a URL is downloaded (mode 0600, its Last-Modified as mtime, checked against
 * --checksum), and a local tar archive (plain, gzip or zstd) is unpacked into the destination with the
 * archive's owners and modes. Archives are unpacked by the agent's own layer applier, which keeps every
 * entry inside the target.
 */

const URL_PATTERN = /^https?:\/\//;
const DOWNLOAD_TIMEOUT_MS = 5 * 60 * 1000;

export function isUrl(source: string): boolean {
  return URL_PATTERN.test(source);
}

/** Downloads `url` into `directory` under its file name; returns the item and its content digest. */
export async function downloadSource(
  url: string,
  directory: string,
  checksum: string | undefined,
  line: number,
): Promise<{ item: CopyItem; digest: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) }).catch((error: Error) => {
    throw new DockerfileError(line, `ADD ${url}: ${(error.cause as Error | undefined)?.message ?? error.message}`);
  });
  if (!response.ok || !response.body) throw new DockerfileError(line, `ADD ${url}: the server answered ${response.status}`);
  const name = path.posix.basename(new URL(url).pathname) || 'index.html';
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const file = path.join(directory, name);
  const hash = createHash('sha256');
  await pipeline(
    Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(file, { mode: 0o600 }),
  );
  const digest = `sha256:${hash.digest('hex')}`;
  if (checksum !== undefined && checksum !== digest)
    throw new DockerfileError(line, `ADD ${url}: digest mismatch: expected ${checksum}, got ${digest}`);
  const modified = Date.parse(response.headers.get('last-modified') ?? '');
  if (!Number.isNaN(modified)) await utimes(file, new Date(modified), new Date(modified));
  return { item: { hostPath: file, stats: await lstat(file), relative: undefined, keepOwners: false }, digest };
}

/** The compression of a local tar archive ADD unpacks, or undefined for any other file. */
export async function archiveCompression(source: ContextSource, line: number): Promise<Compression | undefined> {
  if (!source.stats.isFile()) return undefined;
  const handle = await open(source.hostPath, 'r');
  const head = Buffer.alloc(512);
  const { bytesRead } = await handle.read(head, 0, head.length, 0).finally(() => handle.close());
  const bytes = head.subarray(0, bytesRead);
  if (bytes.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))) return 'gzip';
  if (bytes.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (bytes.subarray(0, 3).toString('latin1') === 'BZh' || bytes.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    throw new DockerfileError(line, `ADD ${source.relative}: bzip2 and xz archives are not supported (gzip, zstd or plain tar)`);
  return bytesRead >= 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar' ? 'none' : undefined;
}

/** Unpacks the archive into `directory` (owners kept when the agent runs as root). */
export async function unpackArchive(source: ContextSource, compression: Compression, directory: string, line: number): Promise<CopyItem> {
  await mkdir(directory, { recursive: true, mode: 0o755 });
  const stream = createReadStream(source.hostPath).pipe(decompressor(compression));
  await applyLayerTar(stream, directory, { keepSetid: true, preserveOwnership: process.getuid?.() === 0, warn: () => undefined }).catch(
    (error: Error) => {
      throw new DockerfileError(line, `ADD ${source.relative}: cannot unpack the archive: ${error.message}`);
    },
  );
  return { hostPath: directory, stats: await lstat(directory), relative: undefined, keepOwners: true };
}
