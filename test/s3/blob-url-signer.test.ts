import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import test from 'ava';
import { BlobUrlSigner } from '../../server/storage/s3/blob-url-signer.js';
import { readBytes } from '../helpers/http-client.js';
import { S3Server } from '../helpers/s3-server.js';

// Presigned URLs after the first are signed from the first one's host, path prefix and parameters rather than
// by the SDK's getSignedUrl: checked against the SDK's own URL for the same key and on a real s3rver.
const BUCKET = 'berth';
let s3: S3Server | undefined;
let client: S3Client | undefined;

test.before(async () => {
  s3 = await S3Server.start();
  client = s3.client();
});

test.after.always(async () => {
  client?.destroy();
  await s3?.stop();
});

async function putObject(key: string, body: string): Promise<void> {
  await client!.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

function sortedParameters(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.sort();
  return parsed.href;
}

/** The signer's URL for `key` and the SDK's, signed in the same second (so with the same signature if right). */
async function sameSecondUrls(signer: BlobUrlSigner, key: string): Promise<[string, string]> {
  for (let attempt = 0; ; attempt++) {
    const ours = await signer.presign(key, 300);
    const sdk = await getSignedUrl(client!, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 300 });
    const date = (url: string) => new URL(url).searchParams.get('X-Amz-Date');
    if (date(ours) === date(sdk) || attempt === 5) return [sortedParameters(ours), sortedParameters(sdk)];
  }
}

test('URLs signed after the first are the SDK URL for their key, signature included, and serve their object', async (t) => {
  const signer = new BlobUrlSigner(client!, BUCKET);
  const keys = ['p/blobs/sha256/aa/first', 'p/blobs/sha256/bb/second', 'p/blobs/sha256/cc/third'];
  for (const key of keys) await putObject(key, `bytes of ${key}`);
  for (const key of keys) {
    // s3rver does not check signatures, so the SDK's URL is the reference.
    const [url, sdk] = await sameSecondUrls(signer, key);
    t.is(url, sdk);
    const response = await fetch(url);
    t.is(response.status, 200, key);
    t.is((await readBytes(response)).toString(), `bytes of ${key}`);
  }
});

test('a key that needs percent-encoding in a URL is signed by the SDK and serves its object', async (t) => {
  const signer = new BlobUrlSigner(client!, BUCKET);
  await putObject('p/plain', 'plain');
  await putObject('p/with space+plus', 'encoded');
  await signer.presign('p/plain', 300);
  const response = await fetch(await signer.presign('p/with space+plus', 300));
  t.is(response.status, 200);
  t.is((await readBytes(response)).toString(), 'encoded');
});

test('a URL signed from the template is refused once its expiry has passed', async (t) => {
  const signer = new BlobUrlSigner(client!, BUCKET);
  await putObject('p/expiring', 'soon gone');
  await signer.presign('p/plain', 300);
  const url = await signer.presign('p/expiring', 1);
  t.is(new URL(url).searchParams.get('X-Amz-Expires'), '1');
  await new Promise((resolve) => setTimeout(resolve, 2_100));
  t.is((await fetch(url)).status, 403);
});
