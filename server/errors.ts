/**
 * The one error type routes and services throw. It carries the spec's error code and the HTTP status;
 * the error middleware (server/http/error-middleware.ts) renders it as the spec's JSON body.
 */
export type ErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  // Distribution's extensions, which docker and skopeo understand.
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'TAG_INVALID'
  | 'UNAVAILABLE'
  // Berth's own: the disk or quota under the blob store is full (507), or the storage itself failed (503).
  | 'STORAGE_FULL'
  | 'STORAGE_UNAVAILABLE'
  | 'UNKNOWN';

const DEFAULT_MESSAGES: Record<ErrorCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
  RANGE_INVALID: 'invalid content range',
  PAGINATION_NUMBER_INVALID: 'invalid number of results requested',
  TAG_INVALID: 'manifest tag did not match URI',
  UNAVAILABLE: 'service unavailable',
  STORAGE_FULL: 'registry storage is full',
  STORAGE_UNAVAILABLE: 'registry storage failed',
  UNKNOWN: 'unknown error',
};

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers, e.g. Range on a 416 or Retry-After on a 429. */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    status: number,
    message?: string,
    options: { detail?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message ?? DEFAULT_MESSAGES[code]);
    this.name = 'RegistryError';
    this.code = code;
    this.status = status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  toJSON(): { errors: Array<{ code: ErrorCode; message: string; detail?: unknown }> } {
    const entry: { code: ErrorCode; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}
