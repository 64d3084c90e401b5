import test from 'ava';
import { CodedError, DistributionErrors, registerErrorCodes, registeredErrorCodes } from '../../platform/errors.js';

// The distribution spec's table of codes and statuses (plus Distribution's extensions).
const SPEC_STATUS: Record<string, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 400,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  TAG_INVALID: 400,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
};

for (const [code, status] of Object.entries(SPEC_STATUS)) {
  test(`${code} answers ${status} with the spec's JSON error body`, (t) => {
    const errorCode = DistributionErrors[code as keyof typeof DistributionErrors];
    const error = new CodedError(errorCode);
    t.is(error.status, status);
    t.deepEqual(JSON.parse(JSON.stringify(error)), { errors: [{ code, message: errorCode.message }] });
  });
}

test('every variant carries a spec code as its wire code', (t) => {
  for (const [key, errorCode] of Object.entries(DistributionErrors)) {
    t.true(errorCode.code in SPEC_STATUS, `${key} uses ${errorCode.code}`);
  }
});

test('a message and detail given at the throw site reach the body', (t) => {
  const error = new CodedError(DistributionErrors.BODY_TOO_LARGE, 'too big', { detail: { limit: 4 } });
  t.is(error.status, 413);
  t.deepEqual(error.toJSON(), { errors: [{ code: 'SIZE_INVALID', message: 'too big', detail: { limit: 4 } }] });
});

test('a code registered twice is refused, so two groups cannot claim one name', (t) => {
  registerErrorCodes('test-group', { ONLY_ONCE: { status: 409, message: 'once' } });
  t.throws(() => registerErrorCodes('test-group', { ONLY_ONCE: { status: 409, message: 'again' } }), { message: /registered twice/ });
  t.true(registeredErrorCodes().has('test-group.ONLY_ONCE'));
});
