import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { layerOf, layerOfTar, pushLayout, writeImageLayout, type TarEntry } from '../helpers/agent-images.js';
import {
  compareConfigs,
  compareFilesystems,
  flattenImage,
  imageConfigFields,
  openContentStore,
  openDockerArchive,
  openOciLayout,
  openRegistryImage,
  type FilesystemEntry,
  type ImageSource,
} from '../helpers/image-filesystem.js';
import { digestOf } from '../../oci/digest.js';
import { RegistryProcess } from '../helpers/registry-process.js';

const dirs: string[] = [];
test.after.always(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-imagefs-'));
  dirs.push(dir);
  return dir;
}

/** An OCI layout of these layers (gzip), opened as an image. */
async function imageOf(...layers: TarEntry[][]): Promise<ImageSource> {
  const layout = await tempDir();
  await writeImageLayout(layout, 'test', { layers: await Promise.all(layers.map((entries) => layerOf(entries, 'gzip'))) });
  return openOciLayout(layout, 'test');
}

async function flattened(...layers: TarEntry[][]): Promise<FilesystemEntry[]> {
  return flattenImage(await imageOf(...layers));
}

function paths(entries: readonly FilesystemEntry[]): string[] {
  return entries.map((entry) => entry.path);
}

const dir = (name: string, mode = 0o755): TarEntry => ({ name, type: 'directory', mode });
const file = (name: string, content: string, mode = 0o644): TarEntry => ({ name, content, mode });

test('later layers replace files and whiteouts remove a file or a whole directory of a lower layer', async (t) => {
  const entries = await flattened(
    [dir('etc/'), file('etc/a', 'one'), file('etc/b', 'keep'), dir('var/'), dir('var/cache/'), file('var/cache/x', 'x')],
    [file('etc/a', 'two', 0o600), { name: 'etc/.wh.b' }, { name: 'var/.wh.cache' }],
  );
  t.deepEqual(paths(entries), ['/etc', '/etc/a', '/var']);
  const a = entries.find((entry) => entry.path === '/etc/a')!;
  t.like(a, { type: 'file', mode: 0o600, size: 3, contentDigest: digestOf('two') });
});

test('a whiteout hides only lower layers: a file the same layer adds back stays, whatever the entry order', async (t) => {
  const entries = await flattened([dir('d/'), file('d/f', 'old')], [file('d/f', 'new'), { name: 'd/.wh.f' }]);
  t.like(
    entries.find((entry) => entry.path === '/d/f'),
    { contentDigest: digestOf('new') },
  );
});

test('an opaque directory clears what lower layers put in it and keeps what its own layer adds', async (t) => {
  const entries = await flattened(
    [dir('app/', 0o755), file('app/old', 'o'), dir('app/sub/'), file('app/sub/deep', 'd'), file('other', 'kept')],
    [dir('app/', 0o700), file('app/new', 'n'), { name: 'app/.wh..wh..opq' }],
  );
  t.deepEqual(paths(entries), ['/app', '/app/new', '/other']);
  t.is(entries[0]!.mode, 0o700, 'the upper layer sets the directory metadata');
});

test('a file replacing a directory takes its whole subtree away', async (t) => {
  const entries = await flattened([dir('x/'), file('x/inner', 'i')], [file('x', 'now a file')]);
  t.deepEqual(paths(entries), ['/x']);
  t.is(entries[0]!.type, 'file');
});

test('hard links carry their target path, size and content digest; symlinks their target as written', async (t) => {
  const entries = await flattened([
    dir('bin/'),
    file('bin/busybox', 'ELF...', 0o755),
    { name: 'bin/sh', type: 'link', linkname: 'bin/busybox', mode: 0o755 },
    { name: 'bin/ls', type: 'symlink', linkname: 'busybox', mode: 0o777 },
  ]);
  t.like(
    entries.find((entry) => entry.path === '/bin/sh'),
    {
      type: 'hardlink',
      linkTarget: '/bin/busybox',
      size: 6,
      contentDigest: digestOf('ELF...'),
    },
  );
  t.like(
    entries.find((entry) => entry.path === '/bin/ls'),
    { type: 'symlink', linkTarget: 'busybox', contentDigest: null, size: 0 },
  );
});

test('a hard link to nothing is an error naming the link and the layer', async (t) => {
  const image = await imageOf([{ name: 'lonely', type: 'link', linkname: 'missing' }]);
  await t.throwsAsync(flattenImage(image), { message: /layer 1: hard link \/lonely points at \/missing/ });
});

/** A tar whose entries carry PAX records (tar-stream writes them when a header has `pax`). */
async function tarWithPax(entries: Array<{ name: string; content: string; pax: Record<string, string> }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const entry of entries) pack.entry({ name: entry.name, mode: 0o644, pax: entry.pax }, entry.content);
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

test('extended attributes come from the PAX SCHILY.xattr records, sorted, and other PAX records are ignored', async (t) => {
  const layout = await tempDir();
  const layerTar = await tarWithPax([
    { name: 'cap', content: 'c', pax: { 'SCHILY.xattr.user.b': '2', 'SCHILY.xattr.security.capability': 'x', comment: 'no' } },
  ]);
  await writeImageLayout(layout, 'test', { layers: [await layerOfTar(layerTar, 'none')] });
  const [entry] = await flattenImage(await openOciLayout(layout, 'test'));
  t.deepEqual(entry!.xattrs, { 'security.capability': 'x', 'user.b': '2' });
  t.deepEqual(Object.keys(entry!.xattrs), ['security.capability', 'user.b']);
});

/** A `docker save`-shaped archive: manifest.json, a config, one directory with layer.tar per layer. */
async function dockerArchiveOf(config: object, layers: TarEntry[][]): Promise<string> {
  const pack = tar.pack();
  const archive = path.join(await tempDir(), 'image.tar');
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  const layerNames: string[] = [];
  for (const [index, entries] of layers.entries()) {
    const layer = await layerOf(entries, 'none');
    layerNames.push(`${index}/layer.tar`);
    pack.entry({ name: `${index}/`, type: 'directory' });
    pack.entry({ name: `${index}/layer.tar` }, layer.tar);
  }
  pack.entry({ name: 'config.json' }, JSON.stringify(config));
  pack.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: 'config.json', RepoTags: ['t:1'], Layers: layerNames }]));
  pack.finalize();
  await ended;
  await writeFile(archive, Buffer.concat(chunks));
  return archive;
}

test('a docker save archive (layers streamed out of the archive file) flattens like the same layers in an OCI layout', async (t) => {
  const layers = [[dir('a/'), file('a/1', 'one'), file('a/2', 'two')], [{ name: 'a/.wh.1' }, file('a/3', 'three')], []];
  const fromArchive = await flattenImage(await openDockerArchive(await dockerArchiveOf({ config: {} }, layers)));
  const fromLayout = await flattened(...layers);
  t.deepEqual(fromArchive, fromLayout);
  t.deepEqual(paths(fromArchive), ['/a', '/a/2', '/a/3']);
});

test('config fields: absent, null and empty maps read as null; present ones as they are', async (t) => {
  const archive = await dockerArchiveOf(
    {
      config: {
        Env: ['PATH=/bin'],
        Cmd: null,
        Entrypoint: ['/bin/sh', '-c'],
        WorkingDir: '',
        Volumes: {},
        ExposedPorts: { '80/tcp': {} },
        Labels: { a: 'b' },
        Healthcheck: { Test: ['NONE'] },
      },
    },
    [[]],
  );
  const fields = imageConfigFields(await openDockerArchive(archive));
  t.deepEqual(fields, {
    Env: ['PATH=/bin'],
    Cmd: null,
    Entrypoint: ['/bin/sh', '-c'],
    WorkingDir: null,
    User: null,
    ExposedPorts: { '80/tcp': {} },
    Volumes: null,
    Labels: { a: 'b' },
    StopSignal: null,
    Healthcheck: { Test: ['NONE'] },
    Shell: null,
    OnBuild: null,
  });
});

test('filesystem differences name the path, the field and both values; config differences the field', async (t) => {
  const left = await flattened([
    file('same', 's'),
    file('mode', 'm', 0o644),
    file('left-only', 'l'),
    { name: 'link', type: 'symlink', linkname: 'a' },
  ]);
  const right = await flattened([
    file('same', 's'),
    file('mode', 'm', 0o600),
    file('right-only', 'r'),
    { name: 'link', type: 'symlink', linkname: 'b' },
  ]);
  t.deepEqual(compareFilesystems(left, right, ['docker', 'berth']), [
    '/left-only: only in docker (file)',
    '/link: linkTarget "a" (docker) vs "b" (berth)',
    '/mode: mode 0644 (docker) vs 0600 (berth)',
    '/right-only: only in berth (file)',
  ]);
  t.deepEqual(compareFilesystems(left, left, ['docker', 'berth']), []);
  const base = imageConfigFields({ description: 'x', config: { config: { Labels: { a: '1', b: '2' } } }, layers: [] });
  const reordered = imageConfigFields({ description: 'y', config: { config: { Labels: { b: '2', a: '1' }, User: 'nobody' } }, layers: [] });
  t.deepEqual(compareConfigs(base, reordered, ['docker', 'berth']), ['config: User null (docker) vs "nobody" (berth)']);
});

test('an image read from a registry, or from a content store by manifest digest, flattens like its OCI layout', async (t) => {
  const layout = await tempDir();
  const layers = [
    await layerOf([dir('srv/'), file('srv/a', 'a'), file('srv/b', 'b')], 'gzip'),
    await layerOf([{ name: 'srv/.wh.a' }], 'gzip'),
  ];
  const { manifestDigest } = await writeImageLayout(layout, 'test', { layers });
  const registry = await RegistryProcess.start();
  t.teardown(() => registry.destroy());
  await pushLayout(layout, 'test', `${registry.host}/fs/image:1`);
  const expected = await flattenImage(await openOciLayout(layout, 'test'));
  t.deepEqual(paths(expected), ['/srv', '/srv/b']);
  t.deepEqual(await flattenImage(await openRegistryImage(registry.url, 'fs/image', '1')), expected);
  t.deepEqual(await flattenImage(await openContentStore(layout, manifestDigest)), expected);
});
