import test from 'ava';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DirectRoot } from '../../runtime-agent/build/direct-root.js';
import { copyIntoRoot, type CopyItem } from '../../runtime-agent/build/file-copier.js';
import { OpaqueMarks, type OpaqueLookup } from '../../runtime-agent/snapshot/layered-root.js';
import { run } from '../helpers/exec.js';

/**
 * A COPY or WORKDIR step writes straight into its new layer's directory, without an overlay mount: that
 * directory must be the step's diff (what changed, with the lower layers' directories copied up as overlayfs
 * copies them), and the layers it tops must show what the copy wrote, as a mounted overlay does.
 */

let workDir: string;
let counter = 0;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-direct-root-'));
});

test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const OLD = new Date('2020-01-02T03:04:05Z');

async function file(root: string, relative: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(path.dirname(path.join(root, relative)), { recursive: true });
  await writeFile(path.join(root, relative), content, { mode });
  await chmod(path.join(root, relative), mode);
}

/** A directory with its own mode, owner and old times. */
async function ownedDirectory(root: string, relative: string, mode: number, owner: number): Promise<void> {
  const target = path.join(root, relative);
  await mkdir(target, { recursive: true });
  await chown(target, owner, owner);
  await chmod(target, mode);
  await utimes(target, OLD, OLD);
}

/** A base layer and the step's upper directory; directories under the base are asked about opacity, none in the upper. */
async function layers(): Promise<{ base: string; upper: string; opaque: OpaqueLookup; asked: string[] }> {
  const scenario = path.join(workDir, `case-${++counter}`);
  const [base, upper] = [path.join(scenario, 'base'), path.join(scenario, 'upper')];
  await mkdir(upper, { recursive: true });
  await file(base, 'etc/passwd', 'root:x:0:0::/root:/bin/sh\n');
  await file(base, 'app/keep.txt', 'kept from the base\n');
  await file(base, 'app/becomes-directory', 'a file the copy puts a directory over\n');
  await file(base, 'app/becomes-file/inner.txt', 'hidden once a file is copied over its directory\n');
  await ownedDirectory(base, 'app/becomes-file', 0o755, 0);
  await ownedDirectory(base, 'app', 0o2775, 1000);
  await ownedDirectory(base, 'opt/local', 0o750, 5);
  await ownedDirectory(base, 'opt', 0o711, 7);
  await mkdir(path.join(base, 'usr'));
  await symlink('/opt/local', path.join(base, 'usr', 'local'));
  const marks = new OpaqueMarks();
  const asked: string[] = [];
  const opaque: OpaqueLookup = {
    anyOpaque: (directories) => {
      asked.push(...directories);
      return marks.anyOpaque(directories);
    },
  };
  return { base, upper, opaque, asked };
}

/** The source tree a COPY copies: a file, a private directory, a directory and a file where the base has the other. */
async function source(): Promise<CopyItem> {
  const hostPath = path.join(workDir, `source-${++counter}`);
  await file(hostPath, 'new.txt', 'new\n', 0o640);
  await file(hostPath, 'private/secret.txt', 'private\n', 0o600);
  await chmod(path.join(hostPath, 'private'), 0o700);
  await file(hostPath, 'becomes-directory/inner.txt', 'now a directory\n');
  await file(hostPath, 'becomes-file', 'now a file\n');
  return { hostPath, stats: await lstat(hostPath), relative: undefined, keepOwners: false };
}

/** Every entry under `root`, relative, sorted. */
async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

async function withOverlay<T>(topFirst: readonly string[], use: (mounted: string) => Promise<T>): Promise<T> {
  const mounted = path.join(workDir, `mounted-${++counter}`);
  await mkdir(mounted);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${topFirst.join(':')}`, mounted]);
  try {
    return await use(mounted);
  } finally {
    await run('umount', [mounted]);
  }
}

const modeOf = async (target: string) => (await lstat(target)).mode & 0o7777;
const ownerOf = async (target: string) => {
  const stats = await lstat(target);
  return `${stats.uid}:${stats.gid}`;
};

test('a COPY into an existing directory writes only its diff; the overlay of the layers shows the merge, with files and directories replaced', async (t) => {
  const { base, upper, opaque, asked } = await layers();
  const root = new DirectRoot(upper, [base], opaque);
  await copyIntoRoot(root, [await source()], '/app/', { owner: undefined, mode: undefined, filter: undefined });

  t.deepEqual(await tree(upper), [
    'app',
    'app/becomes-directory',
    'app/becomes-directory/inner.txt',
    'app/becomes-file',
    'app/new.txt',
    'app/private',
    'app/private/secret.txt',
  ]);
  // The existing directory is copied up as it was: the setgid bit and its owner kept.
  t.is(await modeOf(path.join(upper, 'app')), 0o2775);
  t.is(await ownerOf(path.join(upper, 'app')), '1000:1000');
  t.true(
    asked.every((directory) => !directory.startsWith(`${upper}/`)),
    'nothing the step wrote is asked about opacity',
  );

  await withOverlay([upper, base], async (mounted) => {
    t.is(await readFile(path.join(mounted, 'app/keep.txt'), 'utf8'), 'kept from the base\n');
    t.is(await readFile(path.join(mounted, 'app/becomes-directory/inner.txt'), 'utf8'), 'now a directory\n');
    t.is(await readFile(path.join(mounted, 'app/becomes-file'), 'utf8'), 'now a file\n');
    t.is(await modeOf(path.join(mounted, 'app/new.txt')), 0o640);
    t.is(await modeOf(path.join(mounted, 'app/private')), 0o700);
    t.is(await modeOf(path.join(mounted, 'app/private/secret.txt')), 0o600);
    // COPY gives root:root, even in a setgid directory that would pass its group down.
    for (const entry of ['app/new.txt', 'app/private', 'app/private/secret.txt', 'app/becomes-directory', 'app/becomes-file'])
      t.is(await ownerOf(path.join(mounted, entry)), '0:0', entry);
    t.deepEqual((await readdir(path.join(mounted, 'app'))).sort(), ['becomes-directory', 'becomes-file', 'keep.txt', 'new.txt', 'private']);
  });
});

test('a COPY through an image symlink lands where the symlink points; the directories on the way are copied up with their mode, owner and times', async (t) => {
  const { base, upper, opaque } = await layers();
  const root = new DirectRoot(upper, [base], opaque);
  const tool = path.join(workDir, `tool-${++counter}`);
  await writeFile(tool, '#!/bin/sh\n', { mode: 0o755 });
  const item = { hostPath: tool, stats: await lstat(tool), relative: undefined, keepOwners: false };
  await copyIntoRoot(root, [item], '/usr/local/bin/', { owner: { uid: 33, gid: 44 }, mode: 0o750, filter: undefined });

  t.deepEqual(await tree(upper), ['opt', 'opt/local', 'opt/local/bin', `opt/local/bin/${path.basename(tool)}`]);
  t.is(await modeOf(path.join(upper, 'opt')), 0o711);
  t.is(await ownerOf(path.join(upper, 'opt')), '7:7');
  // Only a copy-up happened in /opt: its times are the base's, as overlayfs keeps them.
  t.is((await lstat(path.join(upper, 'opt'))).mtime.getTime(), OLD.getTime());
  t.is(await modeOf(path.join(upper, 'opt/local')), 0o750);
  t.is(await ownerOf(path.join(upper, 'opt/local')), '5:5');
  t.true((await lstat(path.join(upper, 'opt/local'))).mtime.getTime() > OLD.getTime(), 'a directory made in it changed it');
  // The directory the copy made belongs to --chown's owner; the file gets --chmod.
  t.is(await ownerOf(path.join(upper, 'opt/local/bin')), '33:44');
  t.is(await modeOf(path.join(upper, 'opt/local/bin', path.basename(tool))), 0o750);
  t.is(await ownerOf(path.join(upper, 'opt/local/bin', path.basename(tool))), '33:44');
});

test('WORKDIR makes a missing directory (with its parents) for its owner, leaves an existing one unchanged, and refuses a path through a file', async (t) => {
  const { base, upper, opaque } = await layers();
  const root = new DirectRoot(upper, [base], opaque);
  await root.ensureDirectory('/app', { uid: 1000, gid: 1000 });
  t.deepEqual(await tree(upper), [], 'an existing directory is no change');
  await root.ensureDirectory('/srv/data', { uid: 1000, gid: 1000 });
  t.deepEqual(await tree(upper), ['srv', 'srv/data']);
  t.is(await ownerOf(path.join(upper, 'srv')), '1000:1000');
  t.is(await ownerOf(path.join(upper, 'srv/data')), '1000:1000');
  t.is(await modeOf(path.join(upper, 'srv/data')), 0o755);
  await t.throwsAsync(root.ensureDirectory('/etc/passwd/x', undefined), { message: '/etc/passwd/x: /etc/passwd is not a directory' });
  t.is(await readFile((await root.readablePath('/etc/passwd')) as string, 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
});
