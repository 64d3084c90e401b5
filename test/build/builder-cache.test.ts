import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { createBusyboxRootfs } from '../helpers/test-images.js';

/**
 * The build cache, seen as a user sees it in the progress: which steps say CACHED after what changed, and
 * reproducible images with SOURCE_DATE_EPOCH.
 */

let agent: AgentDaemon;
let workDir: string;
let contextDir: string;

const DOCKERFILE = [
  'FROM scratch',
  'COPY rootfs/ /',
  'COPY app/a.txt /a.txt',
  'RUN cat /a.txt > /copy-a',
  'COPY app/b.txt /b.txt',
  'RUN cat /b.txt > /copy-b && touch /built-at',
  'CMD ["cat", "/copy-a", "/copy-b"]',
].join('\n');

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-builder-cache-'));
  contextDir = path.join(workDir, 'context');
  await createBusyboxRootfs(path.join(contextDir, 'rootfs'), 'builder-cache');
  await mkdir(path.join(contextDir, 'app'), { recursive: true });
  await writeFile(path.join(contextDir, 'app', 'a.txt'), 'a1\n');
  await writeFile(path.join(contextDir, 'app', 'b.txt'), 'b1\n');
  await writeFile(path.join(contextDir, 'app', 'unread.txt'), 'never read\n');
  await writeFile(path.join(contextDir, 'ignored.txt'), 'ignored\n');
  await writeFile(path.join(contextDir, '.dockerignore'), 'ignored.txt\n');
  await writeFile(path.join(contextDir, 'Dockerfile'), DOCKERFILE);
  agent = await AgentDaemon.start();
});

test.after.always(async () => {
  await agent?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Each step's text (`FROM scratch`, `RUN ...`) and whether the progress said CACHED for it. */
function steps(progress: string): Array<{ text: string; cached: boolean }> {
  const named = [...progress.matchAll(/^#(\d+) \[\d+\/\d+\] (.*)$/gm)];
  return named.map((match) => ({ text: match[2] as string, cached: new RegExp(`^#${match[1]} CACHED$`, 'm').test(progress) }));
}

async function build(...extra: string[]): Promise<{ stderr: string; seconds: number }> {
  const started = performance.now();
  const { stderr } = await agent.cli(['build', '-t', 'builder/cache:1', ...extra, contextDir]);
  return { stderr, seconds: (performance.now() - started) / 1000 };
}

test.serial('a rebuild with nothing changed runs no step: every step says CACHED', async (t) => {
  const first = await build();
  t.deepEqual(
    steps(first.stderr).map((step) => step.cached),
    [true, false, false, false, false, false],
  );
  const second = await build();
  const all = steps(second.stderr);
  t.is(all.length, 6);
  t.deepEqual(
    all.filter((step) => !step.cached),
    [],
  );
  t.log(`nothing-changed rebuild: ${second.seconds.toFixed(2)} s (CLI process included)`);
  const run = await agent.cli(['run', '--rm', 'builder/cache:1']);
  t.is(run.stdout, 'a1\nb1\n');
});

test.serial('a file never read, or one .dockerignore excludes, reruns nothing', async (t) => {
  await writeFile(path.join(contextDir, 'app', 'unread.txt'), 'changed but never read\n');
  await writeFile(path.join(contextDir, 'ignored.txt'), 'changed but ignored\n');
  const all = steps((await build()).stderr);
  t.true(all.every((step) => step.cached));
});

test.serial('a change to one copied file reruns from that COPY on, the steps before it stay cached', async (t) => {
  await writeFile(path.join(contextDir, 'app', 'b.txt'), 'b2\n');
  const all = steps((await build()).stderr);
  t.deepEqual(
    all.map((step) => [step.text.split(' ').slice(0, 2).join(' '), step.cached]),
    [
      ['FROM scratch', true],
      ['COPY rootfs/', true],
      ['COPY app/a.txt', true],
      ['RUN cat', true],
      ['COPY app/b.txt', false],
      ['RUN cat', false],
    ],
  );
  t.is((await agent.cli(['run', '--rm', 'builder/cache:1'])).stdout, 'a1\nb2\n');
});

test.serial('--no-cache runs every step again', async (t) => {
  const all = steps((await build('--no-cache')).stderr);
  t.deepEqual(
    all.map((step) => step.cached),
    [true, false, false, false, false, false],
  );
});

test.serial('with SOURCE_DATE_EPOCH two builds without cache give the same image digest', async (t) => {
  const ids: string[] = [];
  for (const name of ['first', 'second']) {
    const iidfile = path.join(workDir, `${name}.iid`);
    await agent.cli(['build', '--no-cache', '--build-arg', 'SOURCE_DATE_EPOCH=1700000000', '--iidfile', iidfile, contextDir]);
    ids.push(await readFile(iidfile, 'utf8'));
  }
  t.regex(ids[0] as string, /^sha256:[0-9a-f]{64}$/);
  t.is(ids[0], ids[1]);
});

test.serial('a change to a file RUN --mount=type=bind reads from the context reruns that RUN', async (t) => {
  const directory = path.join(workDir, 'bind-context');
  await createBusyboxRootfs(path.join(directory, 'rootfs'), 'builder-cache-bind');
  await writeFile(path.join(directory, 'bound.txt'), 'first\n');
  await writeFile(
    path.join(directory, 'Dockerfile'),
    [
      'FROM scratch',
      'COPY rootfs/ /',
      'RUN --mount=type=bind,source=bound.txt,target=/bound cat /bound > /seen',
      'CMD ["cat", "/seen"]',
    ].join('\n'),
  );
  const buildBound = async () => steps((await agent.cli(['build', '-t', 'builder/bind:1', directory])).stderr);
  await buildBound();
  t.true((await buildBound()).every((step) => step.cached));
  await writeFile(path.join(directory, 'bound.txt'), 'second\n');
  t.deepEqual(
    (await buildBound()).map((step) => [step.text.split(' ')[0], step.cached]),
    [
      ['FROM', true],
      ['COPY', true],
      ['RUN', false],
    ],
  );
  t.is((await agent.cli(['run', '--rm', '--network', 'none', 'builder/bind:1'])).stdout, 'second\n');
});
