import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { formatPlatform, hostPlatform } from '../../oci/platform.js';
import { createBusyboxRootfs } from '../helpers/test-images.js';

/** What a build refuses, and how it says so: the Dockerfile line, the RUN's exit code and last output; secrets kept out. */

let agent: AgentDaemon;
let workDir: string;
let contextDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-builder-errors-'));
  contextDir = path.join(workDir, 'context');
  await createBusyboxRootfs(path.join(contextDir, 'rootfs'), 'builder-errors');
  await writeFile(path.join(workDir, 'outside.txt'), 'outside the context\n');
  await symlink('/etc', path.join(contextDir, 'etc-link'));
  await symlink('../outside.txt', path.join(contextDir, 'up-link'));
  agent = await AgentDaemon.start();
});

test.after.always(async () => {
  await agent?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function failingBuild(lines: string[], ...extra: string[]): Promise<{ code: number; stderr: string }> {
  await writeFile(path.join(contextDir, 'Dockerfile'), lines.join('\n'));
  const result = await agent.cli(['build', ...extra, contextDir], { allowFailure: true });
  return { code: result.code, stderr: result.stderr };
}

test.serial('a COPY of ../x fails, naming the line', async (t) => {
  const result = await failingBuild(['FROM scratch', 'COPY rootfs/ /', 'COPY ../outside.txt /x']);
  t.not(result.code, 0);
  t.regex(result.stderr, /Dockerfile:3: COPY source \.\.\/outside\.txt is outside the build context/);
});

test.serial('a COPY through a symlink pointing out of the context fails, naming the line', async (t) => {
  for (const source of ['etc-link/passwd', 'up-link']) {
    const result = await failingBuild(['FROM scratch', `COPY ${source} /x`]);
    t.not(result.code, 0);
    t.regex(result.stderr, /Dockerfile:2: COPY source .* points outside the build context/);
  }
});

test.serial('a failing RUN ends the build with its exit code and last output lines, naming the line', async (t) => {
  const result = await failingBuild(['FROM scratch', 'COPY rootfs/ /', 'RUN echo before the failure && exit 3', 'RUN echo never']);
  t.not(result.code, 0);
  t.regex(result.stderr, /Dockerfile:3: RUN echo before the failure && exit 3: process .* did not complete successfully: exit code: 3/);
  t.regex(result.stderr, /> before the failure/);
  t.notRegex(result.stderr, /RUN echo never/);
});

test.serial('an unknown instruction, a syntax error, a missing COPY source and an unknown target stage name what is wrong', async (t) => {
  t.regex((await failingBuild(['FROM scratch', 'FOOBAR x'])).stderr, /Dockerfile:2: unknown instruction: FOOBAR/);
  t.regex((await failingBuild(['FROM scratch', 'FROM'])).stderr, /Dockerfile:2: FROM requires at least one argument/);
  t.regex((await failingBuild(['FROM scratch AS a b'])).stderr, /Dockerfile:1: FROM requires either one or three arguments/);
  t.regex((await failingBuild(['FROM scratch', 'COPY missing.txt /'])).stderr, /Dockerfile:2: "\/missing\.txt": not found/);
  t.regex((await failingBuild(['FROM scratch AS one'], '--target', 'nope')).stderr, /target stage "nope" could not be found/);
  t.regex((await failingBuild(['# syntax=example.com/other/frontend', 'FROM scratch'])).stderr, /Dockerfile:1: syntax example\.com/);
});

test.serial('a secret reaches its RUN step only: in no layer, no history, no later step', async (t) => {
  const secret = 's3cr3t-Value-42';
  const secretFile = path.join(workDir, 'token');
  await writeFile(secretFile, secret);
  await writeFile(
    path.join(contextDir, 'Dockerfile'),
    [
      'FROM scratch',
      'COPY rootfs/ /',
      // The value itself never appears in the Dockerfile (the history holds the command lines).
      'RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /seen',
      'RUN test ! -e /run/secrets/token && ! grep -rq "s3cr3""t-Value" / --exclude-dir=proc --exclude-dir=sys && echo clean > /clean',
    ].join('\n'),
  );
  const iidfile = path.join(workDir, 'secret.iid');
  await agent.cli(['build', '--secret', `id=token,src=${secretFile}`, '--iidfile', iidfile, '-t', 'builder/secret:1', contextDir]);
  const blobsDir = path.join(agent.dataDir, 'content', 'blobs', 'sha256');
  let scanned = 0;
  for (const hex of await readdir(blobsDir)) {
    const bytes = readFileSync(path.join(blobsDir, hex));
    const plain = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
    t.false(plain.includes(secret), `blob ${hex} holds the secret`);
    scanned++;
  }
  t.true(scanned > 3);
  const run = await agent.cli(['run', '--rm', 'builder/secret:1', 'sh', '-c', 'cat /seen /clean; ls /run/secrets 2>&1 || true']);
  t.regex(run.stdout, /^15\nclean\n/);
});

test.serial('--platform this host cannot run is refused before any step, naming the platform; the host’s own builds', async (t) => {
  await writeFile(path.join(contextDir, 'Dockerfile'), ['FROM scratch', 'COPY rootfs/ /', 'RUN echo ran'].join('\n'));
  const own = formatPlatform(hostPlatform());
  const foreign = own === 'linux/s390x' ? 'linux/riscv64' : 'linux/s390x';
  const refused = await agent.cli(['build', '--platform', foreign, contextDir], { allowFailure: true });
  t.is(refused.code, 1);
  t.regex(refused.stderr, new RegExp(`--platform ${foreign}: this agent builds for ${own} only; `));
  t.notRegex(refused.stderr, /RUN echo ran/);
  const malformed = await agent.cli(['build', '--platform', 's390x', contextDir], { allowFailure: true });
  t.is(malformed.code, 1);
  t.regex(malformed.stderr, /invalid platform s390x/);
  const built = await agent.cli(['build', '--platform', own, contextDir]);
  t.regex(built.stderr, /RUN echo ran/);
});

test.serial(
  'an option the daemon refuses while a context of several MB is still being sent ends the CLI at once, naming the option',
  async (t) => {
    // A Dockerfile outside its context: the CLI packs the context and streams it after the options.
    const bigContext = path.join(workDir, 'big-context');
    await mkdir(bigContext, { recursive: true });
    await writeFile(path.join(bigContext, 'payload.bin'), randomBytes(8 * 1024 * 1024));
    const dockerfile = path.join(workDir, 'Dockerfile.big');
    await writeFile(dockerfile, 'FROM scratch\nCOPY payload.bin /\n');
    for (const [flags, message] of [
      [['--platform', 's390x'], /invalid platform s390x/],
      [['-t', 'Upper/Case:1'], /Upper\/Case:1/],
    ] as const) {
      const started = performance.now();
      const result = await agent.cli(['build', ...flags, '-f', dockerfile, bigContext], { allowFailure: true });
      const seconds = (performance.now() - started) / 1000;
      t.is(result.code, 1, result.stderr);
      t.regex(result.stderr, message);
      // A client left sending into a body nobody reads is only freed by the daemon's 5 s keep-alive timeout.
      t.true(seconds < 4, `the CLI took ${seconds.toFixed(1)} s`);
    }
  },
);
