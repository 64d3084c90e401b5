import { execFile } from 'node:child_process';
import { mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * A git URL as a build context, as docker takes one: `https://host/repo.git#ref:subdir` (also `git://`,
 * `git@host:repo`, `ssh://`), fetched with the git CLI at the ref (a branch, tag or commit; the remote's HEAD
 * without one), submodules included, into a temporary directory whose subdirectory is the context. The
 * repository's `.git` is left out of the context, as BuildKit leaves it out.
 */

const execFileAsync = promisify(execFile);
const GIT_TIMEOUT_MS = 10 * 60_000;

export interface GitContextUrl {
  remote: string;
  ref: string | undefined;
  subdir: string;
}

/** Docker's rule: git://, git@ and ssh:// URLs, and http(s) URLs whose path ends in `.git` (before the fragment). */
export function parseGitContext(argument: string): GitContextUrl | undefined {
  const hash = argument.indexOf('#');
  const remote = hash === -1 ? argument : argument.slice(0, hash);
  const fragment = hash === -1 ? '' : argument.slice(hash + 1);
  const isGit = /^(git:\/\/|git@|ssh:\/\/)/.test(remote) || (/^https?:\/\//.test(remote) && new URL(remote).pathname.endsWith('.git'));
  if (!isGit) return undefined;
  const colon = fragment.indexOf(':');
  const ref = colon === -1 ? fragment : fragment.slice(0, colon);
  const subdir = colon === -1 ? '' : fragment.slice(colon + 1);
  if (ref.startsWith('-')) throw new Error(`invalid git context ${argument}: the ref cannot start with "-"`);
  return { remote, ref: ref === '' ? undefined : ref, subdir };
}

/** Clones the ref into a new temporary directory; returns the context directory in it and how to remove it. */
export async function fetchGitContext(url: GitContextUrl): Promise<{ contextDir: string; remove: () => Promise<void> }> {
  const checkout = await mkdtemp(path.join(tmpdir(), 'berth-git-context-'));
  const remove = () => rm(checkout, { recursive: true, force: true });
  try {
    await git(checkout, ['init', '--quiet']);
    await git(checkout, ['remote', 'add', 'origin', url.remote]);
    await git(checkout, ['fetch', '--quiet', '--depth', '1', '--no-tags', 'origin', '--', url.ref ?? 'HEAD']);
    await git(checkout, ['checkout', '--quiet', 'FETCH_HEAD']);
    await git(checkout, ['submodule', 'update', '--quiet', '--init', '--recursive', '--depth', '1']);
    await rm(path.join(checkout, '.git'), { recursive: true, force: true });
    return { contextDir: await subdirectory(checkout, url.subdir), remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** The subdirectory, which must be a directory inside the checkout (no `..`, no symlink out of it). */
async function subdirectory(checkout: string, subdir: string): Promise<string> {
  const root = await realpath(checkout);
  const wanted = await realpath(path.join(checkout, subdir)).catch(() => undefined);
  const inside = wanted !== undefined && (wanted === root || wanted.startsWith(`${root}${path.sep}`));
  if (!inside || !(await stat(wanted)).isDirectory())
    throw new Error(`unable to prepare context: ${subdir} is not a directory of the repository`);
  return wanted;
}

async function git(directory: string, args: string[]): Promise<void> {
  try {
    await execFileAsync('git', args, {
      cwd: directory,
      timeout: GIT_TIMEOUT_MS,
      // Never a prompt for credentials on a terminal the build does not own; only network transports.
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_PROTOCOL_FROM_USER: '0', GIT_ALLOW_PROTOCOL: 'http:https:git:ssh' },
    });
  } catch (error) {
    const detail = ((error as { stderr?: string }).stderr ?? (error as Error).message).trim().split('\n').slice(-3).join(' ');
    throw new Error(`unable to prepare context: git ${args[0]} failed: ${detail}`, { cause: error });
  }
}
