import test from 'ava';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sourcesInLayers } from '../../runtime-agent/build/layer-sources.js';
import { LayeredRoot, OpaqueMarks } from '../../runtime-agent/snapshot/layered-root.js';
import { createWhiteout, markOpaque } from '../../runtime-agent/unpack/overlay-whiteouts.js';
import { run } from '../helpers/exec.js';

/**
 * A build's RUN step reads its root's /etc/passwd and mount points from the layers without mounting them: what
 * it finds must be what the kernel's overlay of the same layers shows, path for path.
 */

let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-layered-root-'));
});

test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function file(layer: string, relative: string, content: string): Promise<void> {
  await mkdir(path.dirname(path.join(layer, relative)), { recursive: true });
  await writeFile(path.join(layer, relative), content);
}

/** Three layers, bottom first, with every way a layer hides what is below it. */
async function layers(): Promise<string[]> {
  const [bottom, middle, top] = ['bottom', 'middle', 'top'].map((name) => path.join(workDir, name)) as [string, string, string];
  await file(bottom, 'etc/passwd', 'bottom passwd\n');
  await file(bottom, 'etc/group', 'bottom group\n');
  await file(bottom, 'opaque/hidden', 'hidden by an opaque directory\n');
  await file(bottom, 'whited/out', 'hidden by a whiteout\n');
  await file(bottom, 'replaced/below', 'hidden by a file above\n');
  await file(bottom, 'real/target', 'through a symlink\n');
  await file(bottom, 'kept/deep/file', 'shown through directories above\n');
  await file(middle, 'etc/group', 'middle group\n');
  await file(middle, 'opaque/shown', 'in the opaque directory\n');
  await markOpaque(path.join(middle, 'opaque'));
  await createWhiteout(path.join(middle, 'whited'));
  await file(middle, 'replaced', 'a file where a directory was\n');
  await file(top, 'etc/hosts', 'top hosts\n');
  await mkdir(path.join(top, 'kept', 'deep'), { recursive: true });
  await symlink('real', path.join(top, 'link'));
  await symlink('../real/target', path.join(top, 'kept', 'relative'));
  return [top, middle, bottom];
}

const PATHS = [
  '/etc/passwd',
  '/etc/group',
  '/etc/hosts',
  '/etc/shadow',
  '/opaque/hidden',
  '/opaque/shown',
  '/whited',
  '/whited/out',
  '/replaced',
  '/replaced/below',
  '/kept/deep/file',
  '/link/target',
  '/kept/relative',
  '/link/../etc/passwd',
  '/nothing/here',
];

test('every path reads as the kernel overlay of the same layers shows it: whiteouts, opaque directories, files over directories, symlinks', async (t) => {
  const topFirst = await layers();
  const mounted = path.join(workDir, 'mounted');
  await mkdir(mounted);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${topFirst.join(':')}`, mounted]);
  try {
    const root = new LayeredRoot(topFirst, new OpaqueMarks());
    for (const target of PATHS) {
      const expected = await readFile(path.join(mounted, target), 'utf8').catch((error: NodeJS.ErrnoException) => error.code);
      const hostPath = await root.hostPath(target);
      const found =
        hostPath === undefined ? 'ENOENT' : await readFile(hostPath, 'utf8').catch((error: NodeJS.ErrnoException) => error.code);
      t.is(found === 'ENOTDIR' ? 'ENOENT' : found, expected === 'ENOTDIR' ? 'ENOENT' : expected, target);
    }
    t.truthy((await lstat(path.join(mounted, 'opaque'))).isDirectory());
    t.is(await root.locate(['whited']), undefined);
    t.is(await root.locate(['link']), path.join(topFirst[0] as string, 'link'), 'a symlink located, not followed');
  } finally {
    await run('umount', [mounted]);
  }
});

test('a directory learned as opaque or not (its layer was just packed) is answered so without asking its attributes again', async (t) => {
  const layer = path.join(workDir, 'learned');
  await file(layer, 'marked/file', 'x\n');
  await file(layer, 'plain/file', 'x\n');
  await markOpaque(path.join(layer, 'marked'));
  const marks = new OpaqueMarks();
  t.true(await new OpaqueMarks().anyOpaque([path.join(layer, 'marked')]), 'asked, the attribute says opaque');

  // Learned answers that contradict the disk: only an answer taken from what was learned can give them.
  marks.learn(path.join(layer, 'marked'), false);
  marks.learn(path.join(layer, 'plain'), true);

  t.false(await marks.anyOpaque([path.join(layer, 'marked')]));
  t.true(await marks.anyOpaque([path.join(layer, 'plain')]));
});

test('COPY --from reads a file, or a directory only one layer has, from the snapshots as the overlay shows it; a merged directory, a wildcard or a missing path need the mount', async (t) => {
  const [top, bottom] = ['from-top', 'from-bottom'].map((name) => path.join(workDir, name)) as [string, string];
  const contents: Array<[string, string[]]> = [
    [bottom, ['app/lib/x', 'app/config', 'shared/one']],
    [top, ['app/out/b', 'app/config', 'shared/two']],
  ];
  for (const [layer, relatives] of contents) for (const relative of relatives) await file(layer, relative, `${layer} ${relative}\n`);
  await symlink('/app/out', path.join(top, 'link'));
  const root = new LayeredRoot([top, bottom], new OpaqueMarks());
  const mounted = path.join(workDir, 'from-mounted');
  await mkdir(mounted);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${top}:${bottom}`, mounted]);
  try {
    const found = async (...patterns: string[]) => (await sourcesInLayers(root, patterns))?.map((source) => source.hostPath);

    t.deepEqual(await found('app/out', '/app/lib/', 'app/config', 'link'), [
      path.join(top, 'app/out'),
      path.join(bottom, 'app/lib'),
      path.join(top, 'app/config'),
      path.join(top, 'app/out'),
    ]);
    t.deepEqual(await readdir(path.join(top, 'app/out')), await readdir(path.join(mounted, 'app/out')));
    t.deepEqual(await readdir(path.join(bottom, 'app/lib')), await readdir(path.join(mounted, 'app/lib')));
    t.is(await readFile(path.join(top, 'app/config'), 'utf8'), await readFile(path.join(mounted, 'app/config'), 'utf8'));

    for (const needsMount of [['shared'], ['app'], ['.'], ['app/*'], ['missing'], ['../app/out'], ['app/out', 'shared']])
      t.is(await found(...needsMount), undefined, needsMount.join(' '));
  } finally {
    await run('umount', [mounted]);
  }
});
