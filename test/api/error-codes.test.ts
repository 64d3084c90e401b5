import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { registeredErrorCodes } from '../../platform/errors.js';
import { ADMIN, AuthRegistry, basic } from '../helpers/auth-registry.js';
import { assertRegistryError, chunkedBody, rawRequest, request, serverErrorLines, type RawResponse } from '../helpers/http-client.js';
import { blobOf, imageManifest, makeBlob, pushImage, putManifest, startUpload, uniqueRepo, unknownDigest } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * Every error code the registry can answer, provoked by one real request against a started `berth serve`,
 * asserting the status and the spec's body `{"errors":[{"code","message","detail"}]}`. The keys are the
 * registered ones (platform/errors.ts); the last test fails when a key is registered without a proof here or
 * in PROVEN_ELSEWHERE.
 */

// Codes that cannot be provoked over HTTP cheaply, and the test that proves each one.
const PROVEN_ELSEWHERE: Record<string, string> = {
  'distribution.UNKNOWN':
    'no request can provoke a 500 on purpose; test/api/restart.test.ts and every sharedRegistry file assert none is logged',
  'distribution.UNAVAILABLE':
    'test/api/slow-clients.test.ts "connections over the per-address cap are answered 429 and over the total cap 503", test/s3/s3-faults.test.ts',
  'distribution.BODY_INCOMPLETE': 'kernel variant, answered only to a client that already left; test/platform/body.test.ts',
  'distribution.BODY_TOO_SLOW': 'test/api/slow-clients.test.ts "... each slow body is cut with 408"',
  'distribution.BUSY': 'needs two collections at once; server/routes/admin-gc.ts, test/platform/errors.test.ts (table)',
  'distribution.BLOB_UPLOAD_INVALID': 'answered to a client that cut its body or raced GC; test/storage/upload-commit.test.ts',
  'berth.STORAGE_FULL': 'test/storage/full-disk.test.ts "a full blob store answers every upload ... with 507"',
  'berth.STORAGE_UNAVAILABLE': 'test/storage/storage-errors.test.ts "a failing or read-only disk is 503 STORAGE_UNAVAILABLE"',
};

interface Case {
  status: number;
  code: string;
  provoke: () => Promise<Response | RawResponse>;
}

let open: RegistryProcess | undefined;
let auth: AuthRegistry | undefined;

test.before(async () => {
  [open, auth] = await Promise.all([
    RegistryProcess.start({
      env: { BERTH_STORAGE__DELETE__ENABLED: 'false', BERTH_UPLOADS__MAX_PER_REPOSITORY: '1', BERTH_LIMITS__MANIFEST_MAX_BYTES: '4096' },
    }),
    AuthRegistry.start(),
  ]);
});

test.after('no request made a registry log an internal error', (t) => {
  t.deepEqual(serverErrorLines(open!.logs), []);
  t.deepEqual(serverErrorLines(auth!.process.logs), []);
});

test.after.always(async () => {
  await Promise.all([open?.destroy(), auth?.destroy()]);
});

const openUrl = (): string => open!.url;
const authUrl = (): string => auth!.url;
const adminHeaders = { Authorization: basic(ADMIN), 'Content-Type': 'application/json' };

const CASES: Record<string, Case> = {
  'distribution.BLOB_UNKNOWN': {
    status: 404,
    code: 'BLOB_UNKNOWN',
    provoke: () => request(openUrl(), `/v2/${uniqueRepo()}/blobs/${unknownDigest()}`),
  },
  'distribution.BLOB_UPLOAD_UNKNOWN': {
    status: 404,
    code: 'BLOB_UPLOAD_UNKNOWN',
    provoke: () => request(openUrl(), `/v2/${uniqueRepo()}/blobs/uploads/${randomUUID()}`),
  },
  'distribution.DIGEST_INVALID': {
    status: 400,
    code: 'DIGEST_INVALID',
    provoke: () => request(openUrl(), `/v2/${uniqueRepo()}/blobs/sha256:abc`),
  },
  'distribution.MANIFEST_BLOB_UNKNOWN': {
    status: 400,
    code: 'MANIFEST_BLOB_UNKNOWN',
    provoke: () => putManifest(openUrl(), uniqueRepo(), 'v1', imageManifest({ config: blobOf('{}'), layers: [makeBlob()] })),
  },
  'distribution.MANIFEST_INVALID': {
    status: 400,
    code: 'MANIFEST_INVALID',
    provoke: () =>
      request(openUrl(), `/v2/${uniqueRepo()}/manifests/v1`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body: '{"schemaVersion": 2, "layers": "not a list"}',
      }),
  },
  'distribution.MANIFEST_UNKNOWN': {
    status: 404,
    code: 'MANIFEST_UNKNOWN',
    provoke: async () => {
      const repo = uniqueRepo();
      await pushImage(openUrl(), repo, { tag: 'v1' });
      return request(openUrl(), `/v2/${repo}/manifests/v2`);
    },
  },
  'distribution.NAME_INVALID': { status: 400, code: 'NAME_INVALID', provoke: () => request(openUrl(), '/v2/Upper/Case/tags/list') },
  'distribution.NAME_UNKNOWN': { status: 404, code: 'NAME_UNKNOWN', provoke: () => request(openUrl(), `/v2/${uniqueRepo()}/tags/list`) },
  'distribution.SIZE_INVALID': {
    status: 400,
    code: 'SIZE_INVALID',
    provoke: async () => {
      // A chunked PATCH declares its length only in Content-Range; 10 bytes arrive where 100 were declared.
      const { location } = await startUpload(openUrl(), uniqueRepo());
      return rawRequest(openUrl(), {
        method: 'PATCH',
        path: `${location.pathname}${location.search}`,
        headers: ['Content-Type: application/octet-stream', 'Content-Range: 0-99', 'Transfer-Encoding: chunked'],
        body: chunkedBody(Buffer.alloc(10, 1)),
      });
    },
  },
  'distribution.BODY_TOO_LARGE': {
    status: 413,
    code: 'SIZE_INVALID',
    provoke: () =>
      request(openUrl(), `/v2/${uniqueRepo()}/manifests/v1`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body: `{"schemaVersion": 2, "padding": "${'x'.repeat(8192)}"}`,
      }),
  },
  'distribution.UNAUTHORIZED': { status: 401, code: 'UNAUTHORIZED', provoke: () => request(authUrl(), `/v2/${uniqueRepo()}/tags/list`) },
  'distribution.DENIED': {
    status: 403,
    code: 'DENIED',
    provoke: async () => {
      const user = await auth!.addUser(`plain-${randomUUID().slice(0, 8)}`, 'password-of-a-user');
      return request(authUrl(), '/admin/v1/users', { headers: { Authorization: basic(user) } });
    },
  },
  'distribution.UNSUPPORTED': {
    status: 400,
    code: 'UNSUPPORTED',
    provoke: () =>
      request(authUrl(), '/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=magic&service=berth',
      }),
  },
  'distribution.UNSUPPORTED_MEDIA_TYPE': {
    status: 415,
    code: 'UNSUPPORTED',
    provoke: () => request(authUrl(), '/token', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' }),
  },
  'distribution.TOOMANYREQUESTS': {
    status: 429,
    code: 'TOOMANYREQUESTS',
    provoke: async () => {
      const repo = uniqueRepo();
      await startUpload(openUrl(), repo);
      return request(openUrl(), `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    },
  },
  'distribution.RANGE_INVALID': {
    status: 416,
    code: 'RANGE_INVALID',
    provoke: async () => {
      const repo = uniqueRepo();
      const image = await pushImage(openUrl(), repo);
      return request(openUrl(), `/v2/${repo}/blobs/${image.config.digest}`, { headers: { Range: 'bytes=100000-' } });
    },
  },
  'distribution.PAGINATION_NUMBER_INVALID': {
    status: 400,
    code: 'PAGINATION_NUMBER_INVALID',
    provoke: () => request(openUrl(), '/v2/_catalog?n=-1'),
  },
  'distribution.TAG_INVALID': {
    status: 400,
    code: 'TAG_INVALID',
    provoke: () => request(openUrl(), `/v2/${uniqueRepo()}/manifests/${'t'.repeat(129)}`, { method: 'DELETE' }),
  },
  'distribution.METHOD_NOT_ALLOWED': {
    status: 405,
    code: 'UNSUPPORTED',
    provoke: () => request(openUrl(), `/v2/${uniqueRepo()}/tags/list`, { method: 'POST' }),
  },
  'distribution.ENDPOINT_UNKNOWN': { status: 404, code: 'UNSUPPORTED', provoke: () => request(openUrl(), '/v2/no-such/endpoint/here') },
  'distribution.DELETE_DISABLED': {
    status: 405,
    code: 'UNSUPPORTED',
    provoke: async () => {
      const repo = uniqueRepo();
      const image = await pushImage(openUrl(), repo);
      return request(openUrl(), `/v2/${repo}/blobs/${image.config.digest}`, { method: 'DELETE' });
    },
  },
  'distribution.READ_ONLY': {
    status: 405,
    code: 'UNSUPPORTED',
    provoke: async () => {
      const readOnly = (on: boolean): Promise<Response> =>
        request(authUrl(), '/admin/v1/maintenance', { method: 'PUT', headers: adminHeaders, body: JSON.stringify({ readOnly: on }) });
      const repo = uniqueRepo();
      const token = await auth!.token([`repository:${repo}:push,pull`], ADMIN);
      if (!(await readOnly(true)).ok) throw new Error('could not switch to read-only mode');
      try {
        return await request(authUrl(), `/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      } finally {
        await readOnly(false);
      }
    },
  },
  'distribution.ACCOUNT_INVALID': {
    status: 400,
    code: 'DENIED',
    provoke: () =>
      request(authUrl(), '/admin/v1/users/shorty', { method: 'PUT', headers: adminHeaders, body: JSON.stringify({ password: 'short' }) }),
  },
  'distribution.ACCOUNT_EXISTS': {
    status: 409,
    code: 'DENIED',
    provoke: async () => {
      const body = JSON.stringify({ name: `twice-${randomUUID().slice(0, 8)}` });
      const first = await request(authUrl(), '/admin/v1/robots', { method: 'POST', headers: adminHeaders, body });
      if (!first.ok) throw new Error(`first robot: ${first.status} ${await first.text()}`);
      return request(authUrl(), '/admin/v1/robots', { method: 'POST', headers: adminHeaders, body });
    },
  },
};

async function assertErrorBody(t: ExecutionContext, response: Response | RawResponse, expected: Case): Promise<void> {
  const entry = await assertRegistryError(t, response, expected.status, expected.code);
  t.true(typeof entry.message === 'string' && entry.message.length > 0, 'a message for people');
  t.deepEqual(
    Object.keys(entry).filter((key) => !['code', 'message', 'detail'].includes(key)),
    [],
    'only the spec fields',
  );
}

for (const [key, expected] of Object.entries(CASES)) {
  test(`${key} is answered ${expected.status} with {"errors":[{"code":"${expected.code}",...}]}`, async (t) => {
    await assertErrorBody(t, await expected.provoke(), expected);
  });
}

test('every registered registry error code is provoked above or named with the test that proves it', (t) => {
  const registryKeys = [...registeredErrorCodes().entries()]
    .filter(([, code]) => code.group === 'distribution' || code.group === 'berth')
    .map(([key]) => key);
  const unproven = registryKeys.filter((key) => !(key in CASES) && !(key in PROVEN_ELSEWHERE));
  t.deepEqual(unproven, []);
  for (const [key, expected] of Object.entries(CASES)) {
    const registered = registeredErrorCodes().get(key);
    t.is(registered?.status, expected.status, key);
    t.is(registered?.code, expected.code, key);
  }
});
