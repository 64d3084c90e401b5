import { createHash, type Hash } from 'node:crypto';
import { CodedError, DistributionErrors } from '../../platform/errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** The canonical `algorithm:hex` string. */
  value: string;
}

/** Parses a digest per the image-spec grammar; only sha256 and sha512 are accepted for content. */
export function parseDigest(input: string): ParsedDigest {
  if (!DIGEST_GRAMMAR.test(input)) {
    throw new CodedError(DistributionErrors.DIGEST_INVALID, 'invalid digest format', { detail: { digest: input } });
  }
  const separator = input.indexOf(':');
  const algorithm = input.slice(0, separator);
  const hex = input.slice(separator + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new CodedError(DistributionErrors.DIGEST_INVALID, `unsupported digest algorithm ${algorithm}`, { detail: { digest: input } });
  }
  if (hex.length !== ENCODED_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new CodedError(DistributionErrors.DIGEST_INVALID, `invalid ${algorithm} digest: expected ${ENCODED_LENGTH[algorithm]} lowercase hex characters`, {
      detail: { digest: input },
    });
  }
  return { algorithm, hex, value: input };
}

export function isDigest(input: string): boolean {
  return input.includes(':');
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(data: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}
