import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Content addresses as the OCI image spec writes them: `<algorithm>:<hex>`. */
const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export type DigestAlgorithm = 'sha256' | 'sha512';

export class ContentVerificationError extends Error {}

export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}

export function parseDigest(digest: string): { algorithm: DigestAlgorithm; hex: string } {
  if (!isDigest(digest)) throw new ContentVerificationError(`invalid digest ${JSON.stringify(digest)}`);
  const [algorithm, hex] = digest.split(':') as [DigestAlgorithm, string];
  return { algorithm, hex };
}

export function digestOf(bytes: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** The 12 hex characters docker shows for layers and image ids. */
export function shortDigest(digest: string): string {
  return (digest.split(':')[1] ?? digest).slice(0, 12);
}

/**
 * Per the OCI image spec: ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
 * A chain id names a layer *on top of its exact parents*, which is what a snapshot keyed by it must mean.
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const ids: string[] = [];
  for (const diffId of diffIds) {
    const parent = ids.at(-1);
    ids.push(parent === undefined ? diffId : digestOf(`${parent} ${diffId}`));
  }
  return ids;
}

/**
 * Hashes and counts the bytes flowing through it, so content is verified while it streams instead of being
 * buffered. Starting from a given hash state and count lets a resumed download go on hashing where the
 * partial file left off. Past `limit` bytes it fails at once: a server sending more than the descriptor's
 * size is not allowed to fill the disk first.
 */
export class DigestingStream extends Transform {
  constructor(
    private readonly hash: Hash,
    public bytes = 0,
    private readonly limit = Number.POSITIVE_INFINITY,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    super();
  }

  static fresh(algorithm: DigestAlgorithm, limit?: number, onProgress?: (bytes: number) => void): DigestingStream {
    return new DigestingStream(createHash(algorithm), 0, limit, onProgress);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      callback(new ContentVerificationError(`content is larger than the expected ${this.limit} bytes`));
      return;
    }
    this.hash.update(chunk);
    this.onProgress?.(this.bytes);
    callback(null, chunk);
  }

  /** Only valid once the stream has ended. */
  digest(algorithm: DigestAlgorithm): string {
    return `${algorithm}:${this.hash.digest('hex')}`;
  }
}
