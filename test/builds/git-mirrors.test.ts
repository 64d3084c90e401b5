import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkoutCommit } from '../../runtime-agent/worker/git-checkout.js';
import { GitMirrors, type GitMirrorLimits } from '../../runtime-agent/worker/git-mirrors.js';
import { run } from '../helpers/exec.js';
import { GitWorkTree } from '../helpers/git-http-server.js';

/**
 * A build worker's git mirrors (one per project) bounded by age and size, with real git: each test fetches a
 * commit of a local repository into mirrors as the worker does, then prunes them.
 */

const HOUR_MS = 3_600_000;
const NOT_FETCHED = "is in the agent's mirror of the repository: not fetched again";

let scratch: string;
let url: string;
let commit: string;

test.before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'berth-git-mirrors-'));
  const source = path.join(scratch, 'source');
  await run('git', ['init', '--quiet', '--initial-branch', 'main', source]);
  const work = new GitWorkTree(source);
  await work.write({ Dockerfile: 'FROM scratch\n', 'data.txt': 'x'.repeat(200_000) });
  commit = await work.commit('one', 1_700_000_000);
  url = `file://${source}`;
});

test.after.always(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Takes the project's mirror as a job does and checks the commit out of it; git's output lines. */
async function checkout(mirrors: GitMirrors, project: string): Promise<string[]> {
  const lines: string[] = [];
  const job = await mkdtemp(path.join(scratch, 'job-'));
  await checkoutCommit({
    url,
    credentials: { type: 'none' },
    commit,
    ref: 'refs/heads/main',
    mirror: await mirrors.use(project, url),
    dir: path.join(job, 'source'),
    privateDir: path.join(job, 'private'),
    signal: AbortSignal.timeout(60_000),
    output: (line) => lines.push(line),
  });
  await rm(job, { recursive: true, force: true });
  return lines;
}

/** Mirrors of the projects under a fresh root, each fetched once; their directories by project. */
async function fetchedMirrors(limits: GitMirrorLimits, projects: string[]): Promise<{ mirrors: GitMirrors; dirs: Map<string, string> }> {
  const mirrors = new GitMirrors(await mkdtemp(path.join(scratch, 'mirrors-')), limits);
  const dirs = new Map<string, string>();
  for (const project of projects) {
    await checkout(mirrors, project);
    dirs.set(project, await mirrors.use(project, url));
  }
  return { mirrors, dirs };
}

async function lastUsed(dir: string, hoursAgo: number): Promise<void> {
  const time = new Date(Date.now() - hoursAgo * HOUR_MS);
  await utimes(dir, time, time);
}

/** Bytes on disk as du counts them. */
async function du(dir: string): Promise<number> {
  return Number((await run('du', ['--summarize', '--block-size=1', dir])).stdout.split('\t')[0]);
}

test('a mirror no job used for longer than the age limit is removed; the others keep their commit and fetch nothing', async (t) => {
  const { mirrors, dirs } = await fetchedMirrors({ maxAgeMs: HOUR_MS, maxBytes: 1024 ** 3 }, ['old', 'recent', 'taken-again']);
  await lastUsed(dirs.get('old')!, 2);
  await lastUsed(dirs.get('recent')!, 0.5);
  await lastUsed(dirs.get('taken-again')!, 2);
  const again = await checkout(mirrors, 'taken-again');
  t.true(
    again.some((line) => line.endsWith(NOT_FETCHED)),
    again.join('\n'),
  );

  const pruned = await mirrors.prune();
  t.deepEqual(pruned.removed, [path.basename(dirs.get('old')!)]);
  t.false(existsSync(dirs.get('old')!));
  for (const project of ['recent', 'taken-again']) {
    const lines = await checkout(mirrors, project);
    t.true(
      lines.some((line) => line.endsWith(NOT_FETCHED)),
      `${project}: ${lines.join('\n')}`,
    );
  }
  const refetched = await checkout(mirrors, 'old');
  t.false(
    refetched.some((line) => line.endsWith(NOT_FETCHED)),
    'the removed mirror is fetched into again',
  );
});

test('beyond the size limit the least recently used mirrors are removed until the rest fit', async (t) => {
  const { dirs } = await fetchedMirrors({ maxAgeMs: HOUR_MS, maxBytes: 1024 ** 3 }, ['first', 'second', 'third']);
  await lastUsed(dirs.get('first')!, 0.3);
  await lastUsed(dirs.get('second')!, 0.1);
  await lastUsed(dirs.get('third')!, 0.2);
  const sizes = new Map(await Promise.all([...dirs].map(async ([project, dir]) => [project, await du(dir)] as const)));
  t.true(sizes.get('first')! > 100_000, `a mirror holds the commit's blobs (${sizes.get('first')} bytes)`);
  const root = path.dirname(dirs.get('first')!);

  const limit = sizes.get('second')! + sizes.get('third')! + sizes.get('first')! / 2;
  const pruned = await new GitMirrors(root, { maxAgeMs: HOUR_MS, maxBytes: limit }).prune();
  t.deepEqual(pruned.removed, [path.basename(dirs.get('first')!)], 'the least recently used goes first');
  t.is(pruned.freedBytes, sizes.get('first')!);
  t.is(pruned.keptBytes, sizes.get('second')! + sizes.get('third')!);
  t.true(existsSync(dirs.get('second')!) && existsSync(dirs.get('third')!));

  const none = await new GitMirrors(root, { maxAgeMs: HOUR_MS, maxBytes: 0 }).prune();
  t.deepEqual(none.removed, [path.basename(dirs.get('third')!), path.basename(dirs.get('second')!)]);
  t.is(none.keptBytes, 0);
});

test('pruning a root no job has made yet removes nothing', async (t) => {
  const pruned = await new GitMirrors(path.join(scratch, 'never-made'), { maxAgeMs: HOUR_MS, maxBytes: 0 }).prune();
  t.deepEqual(pruned, { removed: [], freedBytes: 0, keptBytes: 0 });
});
