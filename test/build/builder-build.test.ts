import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { createBusyboxRootfs } from '../helpers/test-images.js';

/**
 * `berth-agent build` end to end on a real daemon and runc: a busybox root filesystem in the context is the
 * base (no registry needed), multi-stage builds, the result run at once by `berth-agent run`.
 */

let agent: AgentDaemon;
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-builder-'));
  agent = await AgentDaemon.start();
});

test.after.always(async () => {
  await agent?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** A context directory holding `rootfs/` (busybox) and the given files. */
async function context(name: string, files: Record<string, string>): Promise<string> {
  const directory = path.join(workDir, name);
  await mkdir(directory, { recursive: true });
  await createBusyboxRootfs(path.join(directory, 'rootfs'), `builder-${name}`);
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(directory, file)), { recursive: true });
    await writeFile(path.join(directory, file), content);
  }
  return directory;
}

test.serial('a multi-stage build makes an image that berth-agent run starts at once, with its config as the Dockerfile says', async (t) => {
  const directory = await context('multistage', {
    'src/greeting.txt': 'hello from the build stage\n',
    Dockerfile: [
      'FROM scratch AS base',
      'COPY rootfs/ /',
      '',
      'FROM base AS build',
      'ARG WHO=world',
      'WORKDIR /work',
      'COPY src/ ./',
      'RUN cat greeting.txt > /out.txt && echo "built for $WHO" >> /out.txt',
      '',
      'FROM base AS unused',
      'RUN exit 1',
      '',
      'FROM base',
      'COPY --from=build /out.txt /app/out.txt',
      'ENV GREETING="hi there"',
      'LABEL org.example.role=test',
      'EXPOSE 8080/tcp',
      'CMD ["sh", "-c", "cat /app/out.txt; echo $GREETING"]',
    ].join('\n'),
  });
  const build = await agent.cli(['build', '-t', 'builder/app:1', '--build-arg', 'WHO=berth', directory]);
  t.regex(build.stderr, /#\d+ \[build 4\/4\] RUN cat greeting.txt/);
  t.notRegex(build.stderr, /unused/);
  const run = await agent.cli(['run', '--rm', 'builder/app:1']);
  t.is(run.stdout, 'hello from the build stage\nbuilt for berth\nhi there\n');
});
