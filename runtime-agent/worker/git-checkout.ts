import type { GitCredentials } from '../../platform/build-worker-api.js';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface CheckoutRequest {
  url: string;
  credentials: GitCredentials;
  /** The commit to check out, or '' to take the ref's newest commit. */
  commit: string;
  /** `refs/heads/main` or `refs/tags/v1`: fetched when no commit is given. */
  ref: string;
  /** A bare repository kept between jobs (one per project and URL): what it holds is not fetched again. */
  mirror: string;
  /** Empty or missing: the checkout goes here. */
  dir: string;
  /** Credentials files (an SSH key) and the checkout's index are written here, outside the build context. */
  privateDir: string;
  signal: AbortSignal;
  /** Git's progress and messages, line by line. */
  output: (line: string) => void;
}

export interface CheckedOutCommit {
  sha: string;
  /** Committer time, seconds since the epoch: the build's SOURCE_DATE_EPOCH. */
  time: number;
  message: string;
}

/**
 * Exactly one commit with the git CLI, shallow: `git fetch --depth 1 URL <sha>` (the server must allow a
 * want by id, as GitHub, GitLab, Gitea and git's protocol v2 do) into the project's mirror, unless the mirror
 * already has that commit (a rebuild, a retry: no network at all), then its files written out with an index
 * of the job's own, so the checkout has no .git and the mirror's HEAD never moves. Credentials reach git
 * through its environment (GIT_CONFIG_* and GIT_SSH_COMMAND), never the command line or the URL. One job at
 * a time uses a mirror: a worker runs one job at a time.
 */
export async function checkoutCommit(request: CheckoutRequest): Promise<CheckedOutCommit> {
  const commit = await fetchCommit(request);
  await writeCommitFiles(request, commit.sha);
  return commit;
}

/** The first half of checkoutCommit: the commit in the mirror, and what it is; its files are not written yet. */
export async function fetchCommit(request: CheckoutRequest): Promise<CheckedOutCommit> {
  await mkdir(request.dir, { recursive: true, mode: 0o700 });
  await mkdir(request.privateDir, { recursive: true, mode: 0o700 });
  const env = await credentialEnv(request.credentials, request.privateDir);
  const git = (args: string[], output = request.output) => runGit(['--git-dir', request.mirror, ...args], env, request.signal, output);
  const quiet = () => undefined;
  if (!existsSync(path.join(request.mirror, 'HEAD')))
    await runGit(['init', '--quiet', '--bare', request.mirror], env, request.signal, quiet);
  // One git process per step on the warm path: the commit's own `log` tells whether the mirror has it.
  const describe = (target: string) => git(['log', '-1', '--format=%H%n%ct%n%B', target], quiet);
  let shown = request.commit === '' ? undefined : await describe(`${request.commit}^{commit}`).catch(() => undefined);
  if (shown !== undefined) request.output(`${request.commit} is in the agent's mirror of the repository: not fetched again`);
  else {
    await git(['fetch', '--depth', '1', '--no-tags', '--no-auto-maintenance', '--progress', request.url, request.commit || request.ref]);
    shown = await describe('FETCH_HEAD');
  }
  const [sha = '', time = '0', ...message] = shown.split('\n');
  if (request.commit && sha !== request.commit) throw new Error(`fetched ${sha}, not the commit ${request.commit}`);
  return { sha, time: Number(time), message: message.join('\n').trim() };
}

/** The second half of checkoutCommit: the files of a commit fetchCommit brought into the mirror, in the empty `dir`. */
export async function writeCommitFiles(request: CheckoutRequest, sha: string): Promise<void> {
  // read-tree -u writes the files of a tree into the empty checkout through the job's own index.
  const env = { GIT_INDEX_FILE: path.join(request.privateDir, 'index') };
  await runGit(
    ['--git-dir', request.mirror, '--work-tree', request.dir, 'read-tree', '--reset', '-u', sha],
    env,
    request.signal,
    () => undefined,
  );
}

async function credentialEnv(credentials: GitCredentials, privateDir: string): Promise<Record<string, string>> {
  const base = { GIT_TERMINAL_PROMPT: '0', GIT_PROTOCOL: 'version=2' };
  if (credentials.type === 'token') {
    const basic = Buffer.from(`${credentials.username}:${credentials.token}`).toString('base64');
    return { ...base, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` };
  }
  if (credentials.type === 'ssh') {
    const key = path.join(privateDir, 'deploy-key');
    await writeFile(key, withNewline(credentials.privateKey), { mode: 0o600 });
    const knownHosts = path.join(privateDir, 'known_hosts');
    // Projects stored before host keys could be pinned have no knownHosts field at all.
    if (credentials.knownHosts) await writeFile(knownHosts, withNewline(credentials.knownHosts), { mode: 0o600 });
    const hostKeyCheck = credentials.knownHosts ? 'yes' : 'accept-new';
    return {
      ...base,
      GIT_SSH_COMMAND: `ssh -i ${key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=${hostKeyCheck} -o UserKnownHostsFile=${knownHosts}`,
    };
  }
  return base;
}

function withNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

function runGit(args: string[], env: Record<string, string>, signal: AbortSignal, output: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], signal });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
      for (const line of text.split(/[\r\n]+/)) if (line.trim() !== '') output(line);
    });
    child.once('error', (error) => reject(signal.aborted ? new Error('cancelled') : error));
    child.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`git ${args.find((arg) => /^[a-z][a-z-]*$/.test(arg)) ?? ''} failed: ${failureReason(stderr, code)}`));
    });
  });
}

/**
 * What git said went wrong: its `fatal:`/`error:` lines and ssh's own refusals, not the advice git prints after
 * them ("Please make sure you have the correct access rights and the repository exists.").
 */
function failureReason(stderr: string, code: number | null): string {
  const lines = stderr.split(/[\r\n]+/).map((line) => line.trim());
  const reasons = lines.filter((line) =>
    /^(fatal|error):|Permission denied|Host key verification failed|Could not resolve hostname/.test(line),
  );
  return (reasons.length > 0 ? reasons : lines.filter((line) => line !== '').slice(-1)).join(' ') || `exit code ${code}`;
}
