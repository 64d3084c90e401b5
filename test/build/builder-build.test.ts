import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { digestOf } from '../../oci/digest.js';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { run as runCommand } from '../helpers/exec.js';
import { GitHttpServer } from '../helpers/git-http-server.js';
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

/** The config blob of an image in the agent's store (its record names the digest). */
async function imageConfig(
  reference: string,
): Promise<{ config: Record<string, unknown>; history: Array<{ created_by: string; empty_layer?: boolean }> }> {
  const records = JSON.parse(await readFile(path.join(agent.dataDir, 'images.json'), 'utf8')) as Record<string, { configDigest: string }>;
  const record = records[reference];
  if (!record) throw new Error(`no image ${reference}`);
  const hex = record.configDigest.slice('sha256:'.length);
  return JSON.parse(await readFile(path.join(agent.dataDir, 'content', 'blobs', 'sha256', hex), 'utf8'));
}

test.serial('metadata instructions set the config fields as docker does, ONBUILD triggers run in the child build', async (t) => {
  const parent = await context('metadata-parent', {
    Dockerfile: [
      'FROM scratch',
      'COPY rootfs/ /',
      'ONBUILD RUN echo triggered',
      'ENV A=1 B="two words"',
      'ENV LEGACY legacy value',
      'ARG VERSION=1.2',
      'LABEL version=$VERSION "quoted key"=x',
      'EXPOSE 80 53/udp 8000-8001',
      'VOLUME ["/data", "/cache"]',
      'WORKDIR /srv',
      'WORKDIR app',
      'USER 1000:1000',
      'SHELL ["/bin/sh", "-ec"]',
      'STOPSIGNAL SIGQUIT',
      'HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=4 CMD wget -q localhost || exit 1',
      'ENTRYPOINT ["/bin/sh"]',
      'CMD echo $A',
    ].join('\n'),
  });
  await agent.cli(['build', '-t', 'builder/parent:1', parent]);
  const { config, history } = await imageConfig('docker.io/builder/parent:1');
  t.like(config, {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1', 'B=two words', 'LEGACY=legacy value'],
    Labels: { version: '1.2', 'quoted key': 'x' },
    ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} },
    Volumes: { '/data': {}, '/cache': {} },
    WorkingDir: '/srv/app',
    User: '1000:1000',
    Shell: ['/bin/sh', '-ec'],
    StopSignal: 'SIGQUIT',
    Healthcheck: { Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 5e9, Timeout: 2e9, StartPeriod: 60e9, Retries: 4 },
    Entrypoint: ['/bin/sh'],
    Cmd: ['/bin/sh', '-ec', 'echo $A'],
    OnBuild: ['RUN echo triggered'],
  });
  t.true(history.some((entry) => entry.created_by === 'ENV A=1 B="two words"' && entry.empty_layer === true));
  t.false(history.some((entry) => entry.created_by.startsWith('COPY') && entry.empty_layer === true));

  const child = await context('metadata-child', { Dockerfile: 'FROM builder/parent:1\nRUN echo child step' });
  const build = await agent.cli(['build', '--progress', 'plain', '-t', 'builder/child:1', child]);
  t.regex(build.stderr, /\[1\/3\] FROM builder\/parent:1\n[^]*\[2\/3\] RUN echo triggered\n/);
  t.regex(build.stderr, /\[3\/3\] RUN echo child step/);
  t.regex(build.stderr, /#\d+ [\d.]+ triggered/);
  const childConfig = await imageConfig('docker.io/builder/child:1');
  t.is(childConfig.config.OnBuild, null);
});

test.serial('ADD unpacks a local tar.gz keeping its owners, and downloads a URL checked against --checksum', async (t) => {
  const directory = await context('add', { 'archive/hello.txt': 'hello from the archive\n' });
  await runCommand('tar', [
    '-czf',
    path.join(directory, 'files.tar.gz'),
    '--owner=123',
    '--group=456',
    '-C',
    path.join(directory, 'archive'),
    '.',
  ]);
  const body = 'downloaded content\n';
  const server = createServer((_request, response) => response.end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/file.txt`;
  try {
    const dockerfile = (checksum: string) =>
      [
        'FROM scratch',
        'COPY rootfs/ /',
        'ADD files.tar.gz /unpacked/',
        `ADD --checksum=${checksum} ${url} /downloads/`,
        `CMD ["sh", "-c", "cat /unpacked/hello.txt; stat -c %u:%g /unpacked/hello.txt; cat /downloads/file.txt; stat -c %a /downloads/file.txt"]`,
      ].join('\n');
    await writeFile(path.join(directory, 'Dockerfile'), dockerfile(digestOf(body)));
    await agent.cli(['build', '-t', 'builder/add:1', directory]);
    t.is((await agent.cli(['run', '--rm', 'builder/add:1'])).stdout, 'hello from the archive\n123:456\ndownloaded content\n600\n');

    await writeFile(path.join(directory, 'Dockerfile'), dockerfile(digestOf('something else')));
    const failed = await agent.cli(['build', directory], { allowFailure: true });
    t.not(failed.code, 0);
    t.regex(failed.stderr, /Dockerfile:4: ADD http:\/\/127\.0\.0\.1:\d+\/file\.txt: digest mismatch/);
  } finally {
    server.close();
  }
});

const INTERFACES = "sed -n 's/^ *\\([^:]*\\):.*/\\1/p' /proc/net/dev | sort";

test.serial("RUN gets the containers' bridge by default, only lo with --network=none, the host's with build --network host", async (t) => {
  const directory = await context('network', {
    Dockerfile: [
      'FROM scratch',
      'COPY rootfs/ /',
      // /proc/net/dev lists the interfaces of the process's own network namespace.
      `RUN echo $(${INTERFACES}) > /default.txt && grep -c nameserver /etc/resolv.conf > /resolvers.txt`,
      `RUN --network=none echo $(${INTERFACES}) > /none.txt`,
      // Without a network no resolver files are mounted: this lists what the layers hold in /etc.
      'RUN --network=none ls /etc > /etc.txt',
      'CMD ["cat", "/default.txt", "/none.txt", "/resolvers.txt"]',
    ].join('\n'),
    'host.Dockerfile': ['FROM scratch', 'COPY rootfs/ /', `RUN --network=host ${INTERFACES} > /host.txt`, 'CMD ["cat", "/host.txt"]'].join(
      '\n',
    ),
  });
  await agent.cli(['build', '-t', 'builder/network:1', directory]);
  const image = (...args: string[]) => agent.cli(['run', '--rm', '--network', 'none', 'builder/network:1', ...args]);
  t.deepEqual((await image()).stdout.split('\n'), ['eth0 lo', 'lo', '1', '']);
  // The resolver file RUN saw was mounted, never written into a layer.
  t.notRegex((await image('cat', '/etc.txt')).stdout, /resolv\.conf|hosts/);

  const hostDockerfile = path.join(directory, 'host.Dockerfile');
  const refused = await agent.cli(['build', '-f', hostDockerfile, directory], { allowFailure: true });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /Dockerfile:3: RUN --network=host is only allowed in a build started with --network host/);
  await agent.cli(['build', '--network', 'host', '-f', hostDockerfile, '-t', 'builder/network:host', directory]);
  const host = (await agent.cli(['run', '--rm', '--network', 'none', 'builder/network:host'])).stdout.split('\n');
  t.true(host.includes(agent.bridgeName));
});

test.serial(
  'RUN resolves USER and its mount points through every layer as the overlay shows them: a later /etc is searched below, an opaque one hides it; runc-made mount points stay out of the layer',
  async (t) => {
    const directory = await context('layered-root', {
      Dockerfile: [
        'FROM scratch',
        'COPY rootfs/ /',
        "RUN echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd",
        "RUN echo 'app:x:1234:' > /etc/group && echo 'extra:x:4321:app' >> /etc/group",
        // A layer with /etc but neither file: the lookup goes on to the layers below.
        'RUN mkdir /etc/conf.d && echo 1 > /etc/conf.d/one',
        'USER app',
        'RUN echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"',
        'USER root',
        // None of these mount points exists in the root: runc makes each, and none may reach the layer.
        'RUN --mount=type=cache,target=/var/cache/tool --mount=type=tmpfs,target=/scratch/space echo mounted > /mounted',
      ].join('\n'),
      'opaque.Dockerfile': [
        'FROM builder/layered:1',
        // rm and mkdir make /etc an opaque directory in this layer: the passwd file below it is gone (no network: nothing mounted in /etc).
        'RUN --network=none cp /etc/group /group && rm -rf /etc && mkdir /etc && cp /group /etc/group',
        'USER app',
        'RUN id',
      ].join('\n'),
    });
    const build = await agent.cli(['build', '--progress', 'plain', '-t', 'builder/layered:1', directory]);
    t.regex(build.stderr, /uid=1234 gid=1234 groups=1234 4321/);
    const listing = await agent.cli(['run', '--rm', 'builder/layered:1', 'sh', '-c', 'cat /mounted; ls -d /var /scratch 2>&1; true']);
    t.regex(listing.stdout, /^mounted\n/);
    t.regex(listing.stdout, /\/var: No such file or directory/);
    t.regex(listing.stdout, /\/scratch: No such file or directory/);

    const opaque = await agent.cli(['build', '-f', path.join(directory, 'opaque.Dockerfile'), directory], { allowFailure: true });
    t.is(opaque.code, 1);
    t.regex(opaque.stderr, /unable to find user app: no matching entries in passwd file/);
  },
);

test.serial(
  'COPY gives root:root to every file and directory it copies, in a new directory as in a setgid one whose group would pass down',
  async (t) => {
    const directory = await context('copy-owners', {
      'tree/a.txt': 'a\n',
      'tree/deep/b.txt': 'b\n',
      Dockerfile: [
        'FROM scratch',
        'COPY rootfs/ /',
        'RUN mkdir -m 2775 /shared && chgrp 50 /shared',
        'COPY tree/ /shared/sub/',
        'COPY tree/ /plain/',
      ].join('\n'),
    });
    await runCommand('chown', ['-R', '1000:1000', path.join(directory, 'tree')]);
    await agent.cli(['build', '-t', 'builder/owners:1', directory]);
    const copied = ['/shared/sub/a.txt', '/shared/sub/deep', '/shared/sub/deep/b.txt', '/plain/a.txt', '/plain/deep', '/plain/deep/b.txt'];
    const owners = await agent.cli(['run', '--rm', 'builder/owners:1', 'stat', '-c', '%n %u:%g', ...copied]);
    t.deepEqual(
      owners.stdout.trim().split('\n'),
      copied.map((file) => `${file} 0:0`),
    );
  },
);

test.serial('a git URL context builds the ref and subdirectory it names, fetched with the git CLI over smart HTTP', async (t) => {
  const server = await GitHttpServer.start();
  try {
    const repo = await server.createRepository('repo');
    await createBusyboxRootfs(path.join(repo.dir, 'app', 'rootfs'), 'builder-git');
    await repo.write({
      'app/Dockerfile': ['FROM scratch', 'COPY rootfs/ /', 'COPY version.txt /', 'CMD ["cat", "/version.txt"]'].join('\n'),
      'app/version.txt': 'tagged\n',
    });
    await repo.commit('first', 1_700_000_000);
    await repo.tag('v1');
    await repo.write({ 'app/version.txt': 'main\n' });
    await repo.commit('second', 1_700_000_100);
    await repo.push('main');
    await repo.push('v1');
    const url = server.url('repo');
    await agent.cli(['build', '-t', 'builder/git:tag', `${url}#v1:app`]);
    t.is((await agent.cli(['run', '--rm', '--network', 'none', 'builder/git:tag'])).stdout, 'tagged\n');
    // -f names a file of the context (the subdirectory), as with docker.
    await agent.cli(['build', '-t', 'builder/git:main', '-f', 'Dockerfile', `${url}#main:app`]);
    t.is((await agent.cli(['run', '--rm', '--network', 'none', 'builder/git:main'])).stdout, 'main\n');

    const missing = await agent.cli(['build', `${url}#no-such-branch:app`], { allowFailure: true });
    t.is(missing.code, 1);
    t.regex(missing.stderr, /unable to prepare context: git fetch failed: .*no-such-branch/);
    const outside = await agent.cli(['build', `${url}#main:../..`], { allowFailure: true });
    t.is(outside.code, 1);
    t.regex(outside.stderr, /unable to prepare context: \.\.\/\.\. is not a directory of the repository/);
  } finally {
    await server.stop();
  }
});
