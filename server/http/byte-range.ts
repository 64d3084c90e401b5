import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { ByteRange } from '../storage/blob-store.js';

/**
 * Resolves a `Range: bytes=...` request header against a blob's size (RFC 9110). A single range is
 * honoured; a multi-range request is answered with the whole blob, which the RFC allows. Undefined means
 * "send everything".
 */
export function resolveByteRange(header: string, size: number): ByteRange | undefined {
  if (header === '') return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) {
    if (/^bytes=.+,/.test(header.trim())) return undefined;
    throw unsatisfiable(size);
  }
  const [, startText = '', endText = ''] = match;
  if (startText === '' && endText === '') throw unsatisfiable(size);
  if (startText === '') {
    const suffix = Number(endText);
    if (suffix === 0 || size === 0) throw unsatisfiable(size);
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(startText);
  const end = endText === '' ? size - 1 : Math.min(Number(endText), size - 1);
  if (start >= size || end < start) throw unsatisfiable(size);
  return { start, end };
}

function unsatisfiable(size: number): CodedError {
  return new CodedError(DistributionErrors.RANGE_INVALID, 'requested range not satisfiable', {
    detail: { size },
    headers: { 'Content-Range': `bytes */${size}` },
  });
}
