import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * Deterministic pseudo-random blob content, produced as a stream and never held whole in memory.
 *
 * A 32 MiB pool of AES-CTR keystream (fixed key) is made once; block i of a blob is a 1 MiB window of the pool at
 * an offset derived from (seed, i), and block 0 starts with the seed so blobs of different seeds differ. Windows
 * are served without copying, so the client spends its CPU on HTTP rather than on making data.
 */
const BLOCK = 1024 * 1024;
const POOL = 32 * BLOCK;

let pool: Buffer | undefined;

function keystreamPool(): Buffer {
  pool ??= createCipheriv('aes-128-ctr', Buffer.alloc(16, 0x42), Buffer.alloc(16)).update(Buffer.alloc(POOL));
  return pool;
}

function block(seed: number, index: number): Buffer {
  const start = (((index + 1) * 2_654_435_761 + seed * 40_503) >>> 0) % (POOL - BLOCK);
  const window = keystreamPool().subarray(start, start + BLOCK);
  if (index !== 0) return window;
  const first = Buffer.from(window);
  first.write(`berth-bench seed ${seed} `, 'latin1');
  return first;
}

/** Bytes [offset, offset + length) of the blob for `seed`. */
export function blobStream(seed: number, offset: number, length: number): Readable {
  const end = offset + length;
  let position = offset;
  return new Readable({
    highWaterMark: 4 * BLOCK,
    read() {
      if (position >= end) {
        this.push(null);
        return;
      }
      const index = Math.floor(position / BLOCK);
      const within = position - index * BLOCK;
      const take = Math.min(BLOCK - within, end - position);
      position += take;
      this.push(block(seed, index).subarray(within, within + take));
    },
  });
}

const digests = new Map<string, string>();

/** The sha256 digest of a whole blob, computed in a first pass over the stream (cached per seed and size). */
export async function blobDigest(seed: number, size: number): Promise<string> {
  const key = `${seed}:${size}`;
  const cached = digests.get(key);
  if (cached) return cached;
  const hash = createHash('sha256');
  for await (const part of blobStream(seed, 0, size)) hash.update(part as Buffer);
  const digest = `sha256:${hash.digest('hex')}`;
  digests.set(key, digest);
  return digest;
}
