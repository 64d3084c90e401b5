import { CodedError, BerthErrors } from '../../platform/errors.js';

// The disk (or the quota) is full: nothing the client can fix, nothing a retry fixes before space is freed.
const FULL = new Map([
  ['ENOSPC', 'no space left on device'],
  ['EDQUOT', 'disk quota exceeded'],
]);

// The storage itself failed or refuses writes; these can clear up (a remount, a closed file), so 503.
const FAILED = new Map([
  ['EIO', 'input/output error'],
  ['EROFS', 'read-only file system'],
  ['ESTALE', 'stale file handle'],
  ['EMFILE', 'too many open files in the registry'],
  ['ENFILE', 'too many open files on the host'],
]);

/**
 * The client's answer when `error` is a failure of the storage under the registry (a full or broken disk),
 * else undefined. Such failures are the registry's, never the client's: 507 or 503, with the reason.
 */
export function storageFailure(error: unknown): CodedError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined) return undefined;
  const full = FULL.get(code);
  if (full) return new CodedError(BerthErrors.STORAGE_FULL, `registry storage is full (${code}: ${full}); retry once space is freed`);
  const failed = FAILED.get(code);
  if (failed) {
    return new CodedError(BerthErrors.STORAGE_UNAVAILABLE, `registry storage failed (${code}: ${failed}); retry later`, {
      headers: { 'Retry-After': '10' },
    });
  }
  return undefined;
}
