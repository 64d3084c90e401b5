import { CodedError, DistributionErrors } from '../../platform/errors.js';

// The primary is gone or changing: a failover in progress, a restart, a network cut. Retrying soon works.
const SWITCHING =
  /^(READONLY|MASTERDOWN|LOADING) |Connection is closed|Command aborted due to connection close|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Stream isn't writeable|All sentinels are unreachable|Failed to connect to any sentinel|Command timed out/;
// It answers but cannot persist: a full disk (MISCONF, or the embedded Redis's read-only mode), or full memory.
const CANNOT_PERSIST = /^(MISCONF|NOREPLICAS|OOM) /;

/** What a client is told when Redis failed its request: 503 with Retry-After, or undefined if this is no Redis failure. */
export function redisFailure(error: unknown): CodedError | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error.name === 'MaxRetriesPerRequestError' || SWITCHING.test(error.message)) {
    return new CodedError(
      DistributionErrors.UNAVAILABLE,
      'metadata store unavailable (its primary is restarting or failing over); retry shortly',
      {
        headers: { 'Retry-After': '1' },
      },
    );
  }
  if (CANNOT_PERSIST.test(error.message)) {
    return new CodedError(
      DistributionErrors.UNAVAILABLE,
      'the metadata store cannot persist writes (is its disk full?); pulls still work, retry the push later',
      { headers: { 'Retry-After': '10' } },
    );
  }
  return undefined;
}
