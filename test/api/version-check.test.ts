import test from 'ava';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

test('GET /v2/ answers 200 with the Docker-Distribution-API-Version header', async (t) => {
  const response = await fetch(`${registry.url}/v2/`);
  t.is(response.status, 200);
  t.is(response.headers.get('docker-distribution-api-version'), 'registry/2.0');
  t.deepEqual(await response.json(), {});
});

test('an unknown endpoint answers 404 with a JSON error body', async (t) => {
  const response = await fetch(`${registry.url}/v2/foo/bar/nothing-here`);
  t.is(response.status, 404);
  const body = (await response.json()) as { errors: Array<{ code: string }> };
  t.is(body.errors[0]?.code, 'UNSUPPORTED');
});
