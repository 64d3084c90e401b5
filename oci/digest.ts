import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CodedError, DistributionErrors } from '../platform/errors.js';

/**
 * Content addresses per the OCI image spec: `algorithm ":" encoded`, where the algorithm is lowercase
 * components joined by `+ . _ -`. Content is only ever addressed by the two registered algorithms, each
 * with its exact lowercase hex length.
 */
export type DigestAlgorithm = 'sha256' | 'sha512';

const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const ENCODED: Record<DigestAlgorithm, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ };

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** The canonical `algorithm:hex` string. */
  value: string;
}

/** Content that is not what its digest or size promised. */
export class ContentVerificationError extends CodedError {
  constructor(message: string, detail?: unknown) {
    super(DistributionErrors.DIGEST_INVALID, message, { detail });
  }
}

/** A string that is not a digest at all; content named by it cannot be verified either. */
export class InvalidDigestError extends ContentVerificationError {}

export function parseDigest(input: string): ParsedDigest {
  const invalid = (why: string) => new InvalidDigestError(`invalid digest ${JSON.stringify(input)}: ${why}`, { digest: input });
  if (!DIGEST_GRAMMAR.test(input)) throw invalid('not of the form algorithm:encoded');
  const separator = input.indexOf(':');
  const algorithm = input.slice(0, separator);
  const hex = input.slice(separator + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') throw invalid(`unsupported algorithm ${algorithm}`);
  if (!ENCODED[algorithm].test(hex)) throw invalid(`${algorithm} needs ${algorithm === 'sha256' ? 64 : 128} lowercase hex characters`);
  return { algorithm, hex, value: input };
}

export function isDigest(input: string): boolean {
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throws unless `bytes` hash to `expected` (with the algorithm `expected` names). */
export function verifyDigest(bytes: Buffer, expected: string): void {
  const actual = digestOf(bytes, parseDigest(expected).algorithm);
  if (actual !== expected) throw new ContentVerificationError(`content hashes to ${actual}, not ${expected}`, { expected, actual });
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
 * partial file left off. Past `limit` bytes it fails at once: a sender of more than the descriptor's size
 * is not allowed to fill the disk first.
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

  /** Ends with an error unless exactly `expected.size` bytes hashing to `expected.digest` flow through. */
  static verifying(expected: { digest: string; size: number }): DigestingStream {
    const { algorithm } = parseDigest(expected.digest);
    const stream = DigestingStream.fresh(algorithm, expected.size);
    stream.expected = expected;
    return stream;
  }

  private expected: { digest: string; size: number } | undefined;

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

  override _flush(callback: TransformCallback): void {
    if (!this.expected) return callback();
    const { digest, size } = this.expected;
    if (this.bytes !== size) return callback(new ContentVerificationError(`got ${this.bytes} bytes, expected ${size}`));
    const actual = this.digest(parseDigest(digest).algorithm);
    callback(actual === digest ? null : new ContentVerificationError(`content hashes to ${actual}, not ${digest}`));
  }

  /** Only valid once the stream has ended (and only once). */
  digest(algorithm: DigestAlgorithm): string {
    return `${algorithm}:${this.hash.digest('hex')}`;
  }
}
