import test from 'ava';
import { assertRegistryError, request } from '../helpers/http-client.js';
import { makeBlob, pushBlob, pushImage, pushManifest, uniqueRepo, type PushedImage } from '../helpers/oci-content.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

interface TagList {
  name: string;
  tags: string[];
}

/** A repository holding one image under each of `tags` (pushed in the given order). */
async function repoWithTags(tags: string[]): Promise<{ repo: string; image: PushedImage }> {
  const repo = uniqueRepo('tags');
  const image = await pushImage(registry.url, repo);
  for (const tag of tags) await pushManifest(registry.url, repo, image, tag);
  return { repo, image };
}

async function tagPage(path: string): Promise<{ response: Response; body: TagList }> {
  const response = await request(registry.url, path);
  return { response, body: (await response.json()) as TagList };
}

/** The target of a `Link: <...>; rel="next"` header, or undefined when there is none. */
function nextLink(response: Response): string | undefined {
  const link = response.headers.get('link');
  if (link === null) return undefined;
  const match = /^<([^>]+)>;\s*rel="next"$/.exec(link);
  if (!match?.[1]) throw new Error(`malformed Link header: ${link}`);
  return match[1];
}

// Bytewise order: digits < uppercase < '_' < lowercase; '-' < '.' < digits.
const MIXED_TAGS = ['latest', 'B', 'a', 'A', '_x', '1', 'a-b', 'a.b', 'a_b', 'Z9', 'v1.10', 'v1.9', 'v1.2'];
const MIXED_SORTED = ['1', 'A', 'B', 'Z9', '_x', 'a', 'a-b', 'a.b', 'a_b', 'latest', 'v1.10', 'v1.2', 'v1.9'];

test('tags/list returns the repository name and its tags in bytewise order', async (t) => {
  const { repo } = await repoWithTags(MIXED_TAGS);
  const { response, body } = await tagPage(`/v2/${repo}/tags/list`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  t.deepEqual(body, { name: repo, tags: MIXED_SORTED });
  t.is(response.headers.get('link'), null);
});

test('tags/list with n returns the first n tags and a Link to the next page', async (t) => {
  const { repo } = await repoWithTags(MIXED_TAGS);
  const { response, body } = await tagPage(`/v2/${repo}/tags/list?n=3`);
  t.is(response.status, 200);
  t.deepEqual(body, { name: repo, tags: MIXED_SORTED.slice(0, 3) });
  t.is(response.headers.get('link'), `</v2/${repo}/tags/list?n=3&last=B>; rel="next"`);
});

test('tags/list with n and last returns the tags after last', async (t) => {
  const { repo } = await repoWithTags(MIXED_TAGS);
  const { body } = await tagPage(`/v2/${repo}/tags/list?n=4&last=_x`);
  t.deepEqual(body.tags, ['a', 'a-b', 'a.b', 'a_b']);
});

test('walking tags/list pages through the Link header reproduces the full list exactly once', async (t) => {
  const { repo } = await repoWithTags(MIXED_TAGS);
  const seen: string[] = [];
  const pageSizes: number[] = [];
  let path: string | undefined = `/v2/${repo}/tags/list?n=4`;
  while (path !== undefined) {
    const { response, body } = await tagPage(path);
    t.is(response.status, 200);
    t.is(body.name, repo);
    seen.push(...body.tags);
    pageSizes.push(body.tags.length);
    path = nextLink(response);
    if (pageSizes.length > MIXED_TAGS.length) break;
  }
  t.deepEqual(seen, MIXED_SORTED);
  t.deepEqual(pageSizes, [4, 4, 4, 1]);
});

test('the last page that exactly fills n has no Link header', async (t) => {
  const { repo } = await repoWithTags(['a', 'b', 'c', 'd']);
  const first = await tagPage(`/v2/${repo}/tags/list?n=2`);
  t.deepEqual(first.body.tags, ['a', 'b']);
  t.is(nextLink(first.response), `/v2/${repo}/tags/list?n=2&last=b`);
  const second = await tagPage(`/v2/${repo}/tags/list?n=2&last=b`);
  t.deepEqual(second.body.tags, ['c', 'd']);
  t.is(second.response.headers.get('link'), null);
});

test('tags/list with n larger than the number of tags returns them all without a Link', async (t) => {
  const { repo } = await repoWithTags(['x', 'y']);
  const { response, body } = await tagPage(`/v2/${repo}/tags/list?n=100`);
  t.deepEqual(body.tags, ['x', 'y']);
  t.is(response.headers.get('link'), null);
});

test('tags/list with n=0 returns an empty list without a Link', async (t) => {
  const { repo } = await repoWithTags(['x', 'y']);
  const { response, body } = await tagPage(`/v2/${repo}/tags/list?n=0`);
  t.is(response.status, 200);
  t.deepEqual(body, { name: repo, tags: [] });
  t.is(response.headers.get('link'), null);
});

test('tags/list with last beyond the final tag returns an empty list', async (t) => {
  const { repo } = await repoWithTags(['a', 'b']);
  const { response, body } = await tagPage(`/v2/${repo}/tags/list?last=zzz`);
  t.is(response.status, 200);
  t.deepEqual(body, { name: repo, tags: [] });
  t.is(response.headers.get('link'), null);
  const paged = await tagPage(`/v2/${repo}/tags/list?n=5&last=b`);
  t.deepEqual(paged.body.tags, []);
});

test('tags/list with a last that is not a tag continues after it in bytewise order', async (t) => {
  const { repo } = await repoWithTags(['a', 'c', 'e', 'g']);
  t.deepEqual((await tagPage(`/v2/${repo}/tags/list?last=d`)).body.tags, ['e', 'g']);
  t.deepEqual((await tagPage(`/v2/${repo}/tags/list?n=1&last=b`)).body.tags, ['c']);
  t.deepEqual((await tagPage(`/v2/${repo}/tags/list?last=0`)).body.tags, ['a', 'c', 'e', 'g']);
});

for (const n of ['-1', 'abc', '100000000', '1.5']) {
  test(`tags/list with n=${n} is PAGINATION_NUMBER_INVALID`, async (t) => {
    const { repo } = await repoWithTags(['a']);
    await assertRegistryError(t, await request(registry.url, `/v2/${repo}/tags/list?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
  });
}

test('tags/list of an unknown repository is NAME_UNKNOWN', async (t) => {
  const repo = uniqueRepo('tags');
  const entry = await assertRegistryError(t, await request(registry.url, `/v2/${repo}/tags/list`), 404, 'NAME_UNKNOWN');
  t.like(entry.detail, { name: repo });
});

test('tags/list of a repository holding only blobs is NAME_UNKNOWN', async (t) => {
  const repo = uniqueRepo('tags');
  await pushBlob(registry.url, repo, makeBlob(10));
  await assertRegistryError(t, await request(registry.url, `/v2/${repo}/tags/list`), 404, 'NAME_UNKNOWN');
});

test('tags/list of a repository whose manifests are untagged is an empty list', async (t) => {
  const repo = uniqueRepo('tags');
  await pushImage(registry.url, repo);
  const { response, body } = await tagPage(`/v2/${repo}/tags/list`);
  t.is(response.status, 200);
  t.deepEqual(body, { name: repo, tags: [] });
});

test('tags/list works for a multi-component repository name', async (t) => {
  const repo = `${uniqueRepo('tags')}/team/app`;
  const image = await pushImage(registry.url, repo, { tag: 'v2' });
  await pushManifest(registry.url, repo, image, 'v1');
  const { body } = await tagPage(`/v2/${repo}/tags/list`);
  t.deepEqual(body, { name: repo, tags: ['v1', 'v2'] });
});

// The catalog is shared by every test in this file; each catalog test uses names under its own prefix,
// which sort together, and looks only at those.

interface Catalog {
  repositories: string[];
}

async function catalogPage(path: string): Promise<{ response: Response; body: Catalog }> {
  const response = await request(registry.url, path);
  return { response, body: (await response.json()) as Catalog };
}

async function catalogWith(prefix: string): Promise<string[]> {
  const { response, body } = await catalogPage('/v2/_catalog');
  if (response.status !== 200) throw new Error(`catalog answered ${response.status}`);
  return body.repositories.filter((name) => name.startsWith(prefix));
}

test('_catalog lists repositories that have a manifest, in bytewise order', async (t) => {
  const prefix = uniqueRepo('cat');
  const names = [`${prefix}/b`, `${prefix}-z`, `${prefix}/a/x`, `${prefix}.m`, `${prefix}/a`];
  for (const name of names) await pushImage(registry.url, name, { tag: 'v1' });
  const { response, body } = await catalogPage('/v2/_catalog');
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  t.deepEqual(body.repositories, [...body.repositories].sort(), 'whole catalog is sorted');
  t.deepEqual(await catalogWith(prefix), [`${prefix}-z`, `${prefix}.m`, `${prefix}/a`, `${prefix}/a/x`, `${prefix}/b`]);
});

test('a repository holding only blobs is not in _catalog', async (t) => {
  const repo = uniqueRepo('cat');
  await pushBlob(registry.url, repo, makeBlob(10));
  t.deepEqual(await catalogWith(repo), []);
});

test('a repository appears in _catalog with its first manifest and disappears when its last manifest is deleted', async (t) => {
  const repo = uniqueRepo('cat');
  t.deepEqual(await catalogWith(repo), []);
  const first = await pushImage(registry.url, repo, { tag: 'a' });
  const second = await pushImage(registry.url, repo, { tag: 'b' });
  t.deepEqual(await catalogWith(repo), [repo]);
  t.is((await request(registry.url, `/v2/${repo}/manifests/${first.digest}`, { method: 'DELETE' })).status, 202);
  t.deepEqual(await catalogWith(repo), [repo], 'still has one manifest');
  t.is((await request(registry.url, `/v2/${repo}/manifests/${second.digest}`, { method: 'DELETE' })).status, 202);
  t.deepEqual(await catalogWith(repo), []);
  await assertRegistryError(t, await request(registry.url, `/v2/${repo}/tags/list`), 404, 'NAME_UNKNOWN');
});

test('deleting only the tags of a repository keeps it in _catalog', async (t) => {
  const repo = uniqueRepo('cat');
  await pushImage(registry.url, repo, { tag: 'a' });
  t.is((await request(registry.url, `/v2/${repo}/manifests/a`, { method: 'DELETE' })).status, 202);
  t.deepEqual(await catalogWith(repo), [repo]);
});

test('walking _catalog pages through the Link header from a last value reproduces the listing', async (t) => {
  const prefix = uniqueRepo('cat');
  const names = [`${prefix}/e`, `${prefix}/a`, `${prefix}/d/x`, `${prefix}/c`, `${prefix}/b`, `${prefix}/d`];
  for (const name of names) await pushImage(registry.url, name, { tag: 'v1' });
  const expected = [...names].sort();
  const seen: string[] = [];
  let path: string | undefined = `/v2/_catalog?n=2&last=${encodeURIComponent(prefix)}`;
  let pages = 0;
  while (path !== undefined && pages < 20) {
    const { response, body } = await catalogPage(path);
    t.is(response.status, 200);
    t.true(body.repositories.length <= 2);
    pages += 1;
    const mine = body.repositories.filter((name) => name.startsWith(prefix));
    seen.push(...mine);
    if (mine.length < body.repositories.length) break; // walked past this test's names
    const next = nextLink(response);
    if (next !== undefined) t.regex(next, /^\/v2\/_catalog\?n=2&last=[^&]+$/);
    path = next;
  }
  t.deepEqual(seen, expected);
});

test('_catalog with n=0 returns an empty list without a Link', async (t) => {
  await pushImage(registry.url, uniqueRepo('cat'), { tag: 'v1' });
  const { response, body } = await catalogPage('/v2/_catalog?n=0');
  t.is(response.status, 200);
  t.deepEqual(body, { repositories: [] });
  t.is(response.headers.get('link'), null);
});

test('_catalog with n=1 returns one repository and a Link to the next page', async (t) => {
  await pushImage(registry.url, uniqueRepo('cat'), { tag: 'v1' });
  await pushImage(registry.url, uniqueRepo('cat'), { tag: 'v1' });
  const { response, body } = await catalogPage('/v2/_catalog?n=1');
  t.is(body.repositories.length, 1);
  t.is(nextLink(response), `/v2/_catalog?n=1&last=${encodeURIComponent(body.repositories[0] ?? '')}`);
});

test('_catalog with last beyond every name returns an empty list', async (t) => {
  const { response, body } = await catalogPage('/v2/_catalog?last=zzzzzzzz');
  t.is(response.status, 200);
  t.deepEqual(body, { repositories: [] });
  t.is(response.headers.get('link'), null);
});

for (const n of ['-1', 'abc', '100000000']) {
  test(`_catalog with n=${n} is PAGINATION_NUMBER_INVALID`, async (t) => {
    await assertRegistryError(t, await request(registry.url, `/v2/_catalog?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
  });
}
