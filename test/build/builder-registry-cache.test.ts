import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { AuthRegistry } from '../helpers/auth-registry.js';
import { createBusyboxRootfs } from '../helpers/test-images.js';

/**
 * `--cache-to` / `--cache-from` a Berth registry with auth: one agent builds and exports every step's layer
 * and key; a second agent with an empty store builds the same context and runs nothing, with the same image.
 */

let registry: AuthRegistry;
let builder: AgentDaemon;
let follower: AgentDaemon;
let workDir: string;
let contextDir: string;
const CI = { username: 'ci', password: 'ci-password-1' };
const READER = { username: 'reader', password: 'reader-password-1' };

// Two stages: the cache must hold the build stage's intermediate layers, not only the final image's.
const DOCKERFILE = [
  'FROM scratch AS base',
  'COPY rootfs/ /',
  '',
  'FROM base AS build',
  'WORKDIR /work',
  'COPY src/ ./',
  'RUN cat one.txt two.txt > joined.txt',
  'RUN echo "$(wc -c < joined.txt) bytes" > size.txt && echo $RANDOM$RANDOM > /stamp',
  '',
  'FROM base',
  'COPY --from=build /work/joined.txt /work/size.txt /app/',
  'ENV SHOWN=/app/joined.txt',
  'RUN echo $RANDOM$RANDOM > /app/stamp',
  'CMD ["sh", "-c", "cat $SHOWN /app/size.txt"]',
].join('\n');

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-registry-cache-'));
  contextDir = path.join(workDir, 'context');
  await createBusyboxRootfs(path.join(contextDir, 'rootfs'), 'registry-cache');
  await mkdir(path.join(contextDir, 'src'), { recursive: true });
  await writeFile(path.join(contextDir, 'src', 'one.txt'), 'one\n');
  await writeFile(path.join(contextDir, 'src', 'two.txt'), 'two\n');
  await writeFile(path.join(contextDir, 'Dockerfile'), DOCKERFILE);
  [registry, builder, follower] = await Promise.all([AuthRegistry.start(), AgentDaemon.start(), AgentDaemon.start()]);
  await registry.addUser(CI.username, CI.password);
  await registry.grant(`user:${CI.username}`, 'cache/**', ['pull', 'push']);
  await registry.addUser(READER.username, READER.password);
  await registry.grant(`user:${READER.username}`, 'cache/**', ['pull']);
  await builder.cli(['login', '-u', CI.username, '--password-stdin', registry.host], { input: `${CI.password}\n` });
  await follower.cli(['login', '-u', READER.username, '--password-stdin', registry.host], { input: `${READER.password}\n` });
});

test.after.always(async () => {
  await Promise.all([builder?.destroy(), follower?.destroy()]);
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Each step's text and whether the progress said CACHED for it (the FROM lines included). */
function steps(progress: string): Array<{ text: string; cached: boolean }> {
  const named = [...progress.matchAll(/^#(\d+) \[[^\]]*\d+\/\d+\] (.*)$/gm)];
  return named.map((match) => ({ text: match[2] as string, cached: new RegExp(`^#${match[1]} CACHED$`, 'm').test(progress) }));
}

async function build(agent: AgentDaemon, name: string, ...flags: string[]): Promise<{ stderr: string; imageId: string }> {
  const iidfile = path.join(workDir, `${name}.iid`);
  const { stderr } = await agent.cli(['build', '-t', `app/${name}:1`, '--iidfile', iidfile, ...flags, contextDir]);
  return { stderr, imageId: await readFile(iidfile, 'utf8') };
}

test.serial('a second agent with an empty store and --cache-from runs no step and makes the same image', async (t) => {
  const cacheRef = `${registry.host}/cache/app:main`;
  const first = await build(builder, 'first', '--cache-to', `type=registry,ref=${cacheRef},mode=max`);
  t.true(
    steps(first.stderr)
      .filter((step) => step.text.startsWith('RUN'))
      .every((step) => !step.cached),
  );
  t.regex(first.stderr, new RegExp(`^#\\d+ exporting cache to registry ${cacheRef}$`, 'm'));
  t.regex(first.stderr, /^#\d+ \d+\.\d+ writing cache manifest sha256:[0-9a-f]{64} done$/m);

  t.deepEqual(await follower.blobs(), []);
  const second = await build(follower, 'second', '--cache-from', cacheRef);
  t.regex(second.stderr, new RegExp(`^#\\d+ importing cache manifest from ${cacheRef}$`, 'm'));
  const all = steps(second.stderr);
  t.is(all.filter((step) => step.text.startsWith('RUN')).length, 3);
  t.deepEqual(
    all.filter((step) => !step.cached),
    [],
  );
  t.is(second.imageId, first.imageId);
  const [before, after] = await Promise.all([
    builder.cli(['run', '--rm', '--network', 'none', 'app/first:1', 'cat', '/app/stamp']),
    follower.cli(['run', '--rm', '--network', 'none', 'app/second:1', 'cat', '/app/stamp']),
  ]);
  // The RUN's output came from the first agent's layer, not from running again.
  t.is(after.stdout, before.stdout);
  t.is((await follower.cli(['run', '--rm', '--network', 'none', 'app/second:1'])).stdout, 'one\ntwo\n8 bytes\n');
});

test.serial('after a change to one copied file, --cache-from reruns from that COPY on and keeps the stages before it', async (t) => {
  const cacheRef = `${registry.host}/cache/app:main`;
  await writeFile(path.join(contextDir, 'src', 'two.txt'), 'two, changed\n');
  try {
    const changed = steps((await build(follower, 'changed', '--cache-from', cacheRef)).stderr);
    t.deepEqual(
      changed.filter((step) => !step.cached).map((step) => step.text.split(' ').slice(0, 2).join(' ')),
      ['COPY src/', 'RUN cat', 'RUN echo', 'COPY --from=build', 'RUN echo'],
    );
    t.true(changed.find((step) => step.text.startsWith('COPY rootfs/'))?.cached);
  } finally {
    await writeFile(path.join(contextDir, 'src', 'two.txt'), 'two\n');
  }
});

test.serial('--cache-from a repository without a cache builds anyway and says so', async (t) => {
  const missing = `${registry.host}/cache/nothing:here`;
  const result = await build(follower, 'nocache', '--cache-from', missing);
  t.regex(result.stderr, new RegExp(`^#\\d+ \\d+\\.\\d+ no build cache at ${missing} yet$`, 'm'));
  t.regex(result.imageId, /^sha256:[0-9a-f]{64}$/);
});

test.serial('--cache-to a repository the saved credentials cannot push to fails the build naming the denial', async (t) => {
  const denied = await follower.cli(['build', '--cache-to', `${registry.host}/cache/app:reader`, contextDir], { allowFailure: true });
  t.is(denied.code, 1);
  t.regex(denied.stderr, new RegExp(`exporting the build cache to ${registry.host}/cache/app:reader: .*denied`));
});

test.serial('cache options other than a registry repository are refused with the option named', async (t) => {
  const local = await follower.cli(['build', '--cache-to', 'type=local,dest=/tmp/x', contextDir], { allowFailure: true });
  t.is(local.code, 1);
  t.regex(local.stderr, /invalid --cache-to type=local,dest=\/tmp\/x: only type=registry is supported/);
  const min = await follower.cli(['build', '--cache-to', `type=registry,ref=${registry.host}/cache/a,mode=min`, contextDir], {
    allowFailure: true,
  });
  t.regex(min.stderr, /only mode=max is supported/);
  const digest = await follower.cli(['build', '--cache-from', `${registry.host}/cache/a@sha256:${'0'.repeat(64)}`, contextDir], {
    allowFailure: true,
  });
  t.is(digest.code, 1);
  t.regex(digest.stderr, /invalid cache reference .*: it cannot name a digest/);
});
