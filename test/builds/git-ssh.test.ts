import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkoutCommit } from '../../runtime-agent/worker/git-checkout.js';
import type { GitCredentials } from '../../platform/build-worker-api.js';
import { eventually } from '../helpers/eventually.js';
import { run } from '../helpers/exec.js';
import { freePort } from '../helpers/free-port.js';
import { GitWorkTree } from '../helpers/git-http-server.js';

/**
 * A build project's SSH deploy key, as a build worker uses it: a real OpenSSH server on 127.0.0.1 that
 * accepts only the deploy key, serving a bare repository over git's SSH transport.
 */

let scratch: string;
let sshd: ChildProcess;
let url: string;
let commit: string;
let deployKey: string;
let otherKey: string;
/** known_hosts lines for the test server: its own host key, and another key under its address. */
let serverHostKey: string;
let impostorHostKey: string;

async function keyPair(file: string): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', path.basename(file), '-f', file]);
  return readFile(file, 'utf8');
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test.before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'berth-git-ssh-'));
  const source = path.join(scratch, 'source');
  await run('git', ['init', '--quiet', '--initial-branch', 'main', source]);
  const work = new GitWorkTree(source);
  await work.write({ Dockerfile: 'FROM scratch\nCOPY app.txt /\n', 'app.txt': 'over ssh\n' });
  commit = await work.commit('one', 1_700_000_000);
  const bare = path.join(scratch, 'app.git');
  await run('git', ['clone', '--quiet', '--bare', source, bare]);

  deployKey = await keyPair(path.join(scratch, 'deploy'));
  otherKey = await keyPair(path.join(scratch, 'other'));
  await keyPair(path.join(scratch, 'host'));
  await writeFile(path.join(scratch, 'authorized_keys'), await readFile(path.join(scratch, 'deploy.pub')));
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(scratch, 'host')}`,
    `AuthorizedKeysFile ${path.join(scratch, 'authorized_keys')}`,
    `PidFile ${path.join(scratch, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The scratch directory is world-readable /tmp: sshd's ownership checks of the key's path would refuse it.
    'StrictModes no',
  ].join('\n');
  await writeFile(path.join(scratch, 'sshd_config'), `${config}\n`);
  // sshd's privilege separation directory, made by the service's start-up that never runs here.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(scratch, 'sshd_config')], { stdio: 'ignore' });
  await eventually(
    () => listening(port),
    (up) => up,
    20_000,
  );
  url = `ssh://root@127.0.0.1:${port}${bare}`;
  const hostLine = async (publicKey: string) =>
    `[127.0.0.1]:${port} ${(await readFile(publicKey, 'utf8')).split(' ').slice(0, 2).join(' ')}\n`;
  serverHostKey = await hostLine(path.join(scratch, 'host.pub'));
  impostorHostKey = await hostLine(path.join(scratch, 'other.pub'));
});

test.after.always(async () => {
  sshd?.kill();
  await rm(scratch, { recursive: true, force: true });
});

async function checkout(credentials: GitCredentials) {
  const job = await mkdtemp(path.join(scratch, 'job-'));
  const request = {
    url,
    credentials,
    commit,
    ref: 'refs/heads/main',
    mirror: path.join(job, 'mirror.git'),
    dir: path.join(job, 'source'),
    privateDir: path.join(job, 'private'),
    signal: AbortSignal.timeout(60_000),
    output: () => undefined,
  };
  return { request };
}

test('a commit is checked out over SSH with the project deploy key; the key is a 0600 file outside the build context', async (t) => {
  const { request } = await checkout({ type: 'ssh', privateKey: deployKey, knownHosts: null });
  const checkedOut = await checkoutCommit(request);
  t.is(checkedOut.sha, commit);
  t.is(checkedOut.message, 'one');
  t.is(await readFile(path.join(request.dir, 'app.txt'), 'utf8'), 'over ssh\n');
  t.deepEqual((await readdir(request.dir)).sort(), ['Dockerfile', 'app.txt'], 'nothing of git or of the key in the context');
  t.is((await stat(path.join(request.privateDir, 'deploy-key'))).mode & 0o777, 0o600);
  t.true(existsSync(path.join(request.mirror, 'objects')), 'the commit was fetched into the mirror');
});

test("a key the server does not accept fails the checkout naming ssh's refusal and git's error (not git's advice), and writes no files", async (t) => {
  const { request } = await checkout({ type: 'ssh', privateKey: otherKey, knownHosts: null });
  const error = await t.throwsAsync(checkoutCommit(request));
  t.regex(error.message, /^git fetch failed: .*Permission denied \(publickey\).* fatal: Could not read from remote repository\.$/);
  t.deepEqual(await readdir(request.dir), []);
});

test('with the project known_hosts, the server host key is checked: its own key passes; another key under its address, or none for it, fails the checkout', async (t) => {
  const pinned = await checkout({ type: 'ssh', privateKey: deployKey, knownHosts: serverHostKey });
  t.is((await checkoutCommit(pinned.request)).sha, commit);

  const impostor = await checkout({ type: 'ssh', privateKey: deployKey, knownHosts: impostorHostKey });
  const error = await t.throwsAsync(checkoutCommit(impostor.request));
  t.regex(error.message, /^git fetch failed: .*Host key verification failed/);
  t.deepEqual(await readdir(impostor.request.dir), []);

  // Pinned keys that do not name this server refuse it too, rather than trusting its first key.
  const elsewhere = await checkout({ type: 'ssh', privateKey: deployKey, knownHosts: serverHostKey.replace('[127.0.0.1]', '[127.0.0.2]') });
  t.regex((await t.throwsAsync(checkoutCommit(elsewhere.request))).message, /Host key verification failed/);
});
