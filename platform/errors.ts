/**
 * Error codes in the style of Distribution's errcode: each code is registered once with the HTTP status and
 * message it stands for, so a call site names what went wrong and never picks a status itself. The registry
 * and the agent register their own groups; both throw `CodedError`, which one renderer turns into
 * `{"errors":[{"code","message","detail"}]}`.
 */
export interface ErrorCode {
  /** What clients see in the body's `code` (the spec's names for the distribution API). */
  readonly code: string;
  readonly status: number;
  readonly message: string;
  /** The group that registered it, e.g. `distribution` or `agent`. */
  readonly group: string;
}

type ErrorCodeTable = Record<string, { status: number; message: string; code?: string }>;

const registered = new Map<string, ErrorCode>();

/**
 * Registers a group of codes. A key is the name call sites use; `code` sets the wire code when a key is a
 * variant of a spec code with another status (a manifest too large is the spec's SIZE_INVALID, but a 413).
 */
export function registerErrorCodes<const T extends ErrorCodeTable>(group: string, table: T): { readonly [K in keyof T]: ErrorCode } {
  const codes: Record<string, ErrorCode> = {};
  for (const [key, entry] of Object.entries(table)) {
    const qualified = `${group}.${key}`;
    if (registered.has(qualified)) throw new Error(`error code ${qualified} is registered twice`);
    const code: ErrorCode = { code: entry.code ?? key, status: entry.status, message: entry.message, group };
    registered.set(qualified, code);
    codes[key] = code;
  }
  return codes as { readonly [K in keyof T]: ErrorCode };
}

/** Every registered code, for documentation and for the test that renders each one. */
export function registeredErrorCodes(): ReadonlyMap<string, ErrorCode> {
  return registered;
}

export interface ErrorBody {
  errors: Array<{ code: string; message: string; detail?: unknown }>;
}

export class CodedError extends Error {
  readonly code: string;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers, e.g. Range on a 416 or Retry-After on a 429. */
  readonly headers: Record<string, string>;

  constructor(
    readonly errorCode: ErrorCode,
    message?: string,
    options: { detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message ?? errorCode.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = errorCode.code;
    this.status = errorCode.status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  toJSON(): ErrorBody {
    const entry: ErrorBody['errors'][number] = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

/**
 * The distribution spec's codes (and Distribution's extensions that docker and skopeo understand), with the
 * statuses the spec gives them; the variants below them are the same wire codes where Berth answers with
 * another status.
 */
export const DistributionErrors = registerErrorCodes('distribution', {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 400, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
  BODY_TOO_LARGE: { code: 'SIZE_INVALID', status: 413, message: 'request body exceeds the size limit' },
  BODY_INCOMPLETE: { code: 'SIZE_INVALID', status: 400, message: 'request body ended before its declared length' },
  METHOD_NOT_ALLOWED: { code: 'UNSUPPORTED', status: 405, message: 'method not allowed' },
  READ_ONLY: { code: 'UNSUPPORTED', status: 405, message: 'the registry is in read-only mode' },
  DELETE_DISABLED: { code: 'UNSUPPORTED', status: 405, message: 'deletion is disabled on this registry' },
  ENDPOINT_UNKNOWN: { code: 'UNSUPPORTED', status: 404, message: 'no such endpoint' },
  ACCOUNT_INVALID: { code: 'DENIED', status: 400, message: 'account request invalid' },
  ACCOUNT_EXISTS: { code: 'DENIED', status: 409, message: 'account already exists' },
  BUSY: { code: 'UNAVAILABLE', status: 409, message: 'another operation of this kind is running' },
  UNSUPPORTED_MEDIA_TYPE: { code: 'UNSUPPORTED', status: 415, message: 'the request body has an unsupported content type' },
  BODY_TOO_SLOW: { code: 'UNKNOWN', status: 408, message: 'the request body arrived too slowly' },
});

/** Berth's own codes, outside the spec: the disk or quota under the blob store is full, or the storage failed. */
export const BerthErrors = registerErrorCodes('berth', {
  STORAGE_FULL: { status: 507, message: 'registry storage is full' },
  STORAGE_UNAVAILABLE: { status: 503, message: 'registry storage failed' },
});
