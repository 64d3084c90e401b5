import type { GitCredentials } from '../../platform/build-worker-api.js';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface CheckoutRequest {
  url: string;
  credentials: GitCredentials;
  /** The commit to check out, or '' to take the ref's newest commit. */
  commit: string;
  /** `refs/heads/main` or `refs/tags/v1`: fetched when no commit is given. */
  ref: string;
  /** Empty or missing: the checkout goes here. */
  dir: string;
  /** Credentials files (an SSH key) are written here, outside the checkout and so outside the build context. */
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
 * want by id, as GitHub, GitLab, Gitea and git's protocol v2 do), then a detached checkout. Credentials
 * reach git through its environment (GIT_CONFIG_* and GIT_SSH_COMMAND), never the command line or the URL.
 */
export async function checkoutCommit(request: CheckoutRequest): Promise<CheckedOutCommit> {
  await mkdir(request.dir, { recursive: true, mode: 0o700 });
  const env = await credentialEnv(request.credentials, request.privateDir);
  const git = (args: string[]) => runGit(['-C', request.dir, ...args], env, request.signal, request.output);
  await git(['init', '--quiet']);
  await git(['fetch', '--depth', '1', '--no-tags', '--progress', request.url, request.commit || request.ref]);
  await git(['checkout', '--quiet', '--detach', 'FETCH_HEAD']);
  const shown = await runGit(['-C', request.dir, 'log', '-1', '--format=%H%n%ct%n%B'], env, request.signal, () => undefined);
  const [sha = '', time = '0', ...message] = shown.split('\n');
  if (request.commit && sha !== request.commit) throw new Error(`fetched ${sha}, not the commit ${request.commit}`);
  return { sha, time: Number(time), message: message.join('\n').trim() };
}

async function credentialEnv(credentials: GitCredentials, privateDir: string): Promise<Record<string, string>> {
  const base = { GIT_TERMINAL_PROMPT: '0', GIT_PROTOCOL: 'version=2' };
  if (credentials.type === 'token') {
    const basic = Buffer.from(`${credentials.username}:${credentials.token}`).toString('base64');
    return { ...base, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` };
  }
  if (credentials.type === 'ssh') {
    await mkdir(privateDir, { recursive: true, mode: 0o700 });
    const key = path.join(privateDir, 'deploy-key');
    await writeFile(key, credentials.privateKey.endsWith('\n') ? credentials.privateKey : `${credentials.privateKey}\n`, { mode: 0o600 });
    const knownHosts = path.join(privateDir, 'known_hosts');
    return {
      ...base,
      GIT_SSH_COMMAND: `ssh -i ${key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=${knownHosts}`,
    };
  }
  return base;
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
      else reject(new Error(`git ${args[2] ?? ''} failed: ${stderr.trim().split('\n').pop() ?? `exit code ${code}`}`));
    });
  });
}
