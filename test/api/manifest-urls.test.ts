import test from 'ava';
import { loadConfig } from '../../server/config.js';
import { assertRegistryError, serverErrorLines } from '../helpers/http-client.js';
import { foreignLayerManifest, makeBlob, pushBlob, putManifest, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// validation.manifests.urls: descriptor urls must match an allow pattern (when any is set) and no deny pattern.
const ALLOW = ['^https://mirror\\.example\\.com/', '^http://10\\.1\\.2\\.3/'];
const DENY = ['/private/'];

let registry: RegistryProcess | undefined;

test.before(async () => {
  registry = await RegistryProcess.start({
    env: {
      BERTH_VALIDATION__MANIFESTS__URLS__ALLOW: JSON.stringify(ALLOW),
      BERTH_VALIDATION__MANIFESTS__URLS__DENY: JSON.stringify(DENY),
    },
  });
});

test.after('no request made the registry log an internal error', (t) => {
  t.deepEqual(serverErrorLines(registry!.logs), []);
});

test.after.always(async () => {
  await registry?.destroy();
});

test('a descriptor url matching an allow pattern and no deny pattern is accepted', async (t) => {
  const repo = uniqueRepo('urls');
  const config = await pushBlob(registry!.url, repo, makeBlob(30));
  const manifest = foreignLayerManifest(config, ['https://mirror.example.com/layers/a.tar.gz', 'http://10.1.2.3/b.tar.gz']);
  t.is((await putManifest(registry!.url, repo, 'v1', manifest)).status, 201);
});

test('a descriptor url matching no allow pattern is MANIFEST_INVALID naming it', async (t) => {
  const repo = uniqueRepo('urls');
  const config = await pushBlob(registry!.url, repo, makeBlob(30));
  for (const url of ['https://elsewhere.example.com/a.tar.gz', 'https://mirror.example.com.evil.test/a.tar.gz', 'file:///etc/passwd']) {
    const manifest = foreignLayerManifest(config, ['https://mirror.example.com/ok.tar.gz', url]);
    const entry = await assertRegistryError(t, await putManifest(registry!.url, repo, 'v1', manifest), 400, 'MANIFEST_INVALID');
    t.deepEqual(entry.detail, { url });
    t.true(entry.message?.includes(url), entry.message);
  }
});

test('a descriptor url matching a deny pattern is MANIFEST_INVALID naming it and the pattern', async (t) => {
  const repo = uniqueRepo('urls');
  const config = await pushBlob(registry!.url, repo, makeBlob(30));
  const url = 'https://mirror.example.com/private/a.tar.gz';
  const entry = await assertRegistryError(
    t,
    await putManifest(registry!.url, repo, 'v1', foreignLayerManifest(config, [url])),
    400,
    'MANIFEST_INVALID',
  );
  t.deepEqual(entry.detail, { url });
  t.regex(entry.message ?? '', /\/private\/ of validation\.manifests\.urls\.deny/);
});

test('a pattern that is not a regular expression is refused when the configuration loads', (t) => {
  const error = t.throws(() => loadConfig({ env: { BERTH_VALIDATION__MANIFESTS__URLS__DENY: '["(unclosed"]' } }));
  t.regex(error?.message ?? '', /validation\.manifests\.urls\.deny\.0: must be a valid regular expression/);
});
