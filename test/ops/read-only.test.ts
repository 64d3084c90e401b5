import test from 'ava';
import { request } from '../helpers/http-client.js';
import { makeBlob, postBlob, pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

function switchReadOnly(readOnly: boolean): Promise<Response> {
  return request(registry.url, '/admin/v1/maintenance', {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ readOnly }),
  });
}

test('read-only mode refuses pushes with 405 UNSUPPORTED and a reason while pulls go on', async (t) => {
  const repo = uniqueRepo('maintenance');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const switched = await switchReadOnly(true);
  t.is(switched.status, 200);
  t.deepEqual(await switched.json(), { readOnly: true, forcedByConfig: false });
  try {
    const refused = await postBlob(registry.url, repo, makeBlob());
    t.is(refused.status, 405);
    const body = (await refused.json()) as { errors: Array<{ code: string; message: string }> };
    t.is(body.errors[0]?.code, 'UNSUPPORTED');
    t.regex(body.errors[0]?.message ?? '', /read-only mode/);
    const deleted = await request(registry.url, `/v2/${repo}/manifests/v1`, { method: 'DELETE' });
    t.is(deleted.status, 405);

    const manifest = await request(registry.url, `/v2/${repo}/manifests/v1`, { headers: { Accept: image.mediaType } });
    t.is(manifest.status, 200);
    t.is(manifest.headers.get('docker-content-digest'), image.digest);
    const layer = await request(registry.url, `/v2/${repo}/blobs/${image.layers[0]!.digest}`);
    t.is(layer.status, 200);
    t.deepEqual(Buffer.from(await layer.arrayBuffer()), image.layers[0]!.bytes);
  } finally {
    t.is((await switchReadOnly(false)).status, 200);
  }
  t.is((await postBlob(registry.url, repo, makeBlob())).status, 201);
});
