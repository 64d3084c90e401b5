import test from 'ava';
import { spawn } from 'node:child_process';
import { chown, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { agentSocket } from '../helpers/agent-api.js';
import { layerOfTar, pushLayout, tarOf, writeImageLayout } from '../helpers/agent-images.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { createBusyboxRootfs, tarDirectory } from '../helpers/test-images.js';

/**
 * docker's everyday container verbs against real containers run by runc: cp, stats, top, port, rename,
 * pause/unpause, --format on ps/images/inspect, image inspect, history, system df and prune, and what a
 * user sees when the input is wrong.
 */

let registry: RegistryProcess;
let agent: AgentDaemon;
let workDir: string;
let image: string;
let hostPort: number;

const LOOP = 'trap "exit 0" TERM; while true; do sleep 0.2; done';

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-verbs-'));
  [registry, agent] = await Promise.all([RegistryProcess.start(), AgentDaemon.start()]);
  const rootfs = path.join(workDir, 'rootfs');
  await mkdir(rootfs);
  await createBusyboxRootfs(rootfs, 'verbs-box');
  await writeFile(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nappuser:x:1234:1234::/tmp:/bin/sh\n');
  await writeFile(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nappuser:x:1234:\n');
  await tarDirectory(rootfs, `${rootfs}.tar`);
  const layout = path.join(workDir, 'layout');
  await writeImageLayout(layout, '1', { layers: [await layerOfTar(await readFile(`${rootfs}.tar`), 'gzip')] });
  image = `${registry.host}/verbs/box:1`;
  await pushLayout(layout, '1', image);
  await agent.cli(['pull', image]);
  hostPort = await freePort();
  await agent.cli(['run', '-d', '--name', 'web', '--memory', '64m', '-p', `127.0.0.1:${hostPort}:80`, image, 'sh', '-c', LOOP]);
});

test.after.always(async () => {
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const cli = (args: string[]) => agent.cli(args);
const failing = (args: string[]) => agent.cli(args, { allowFailure: true });
const lines = (text: string) => text.trimEnd().split('\n');

test.serial('ps, images and inspect take --format with fields, json and a table header', async (t) => {
  t.is((await cli(['ps', '--format', '{{.Names}} {{.State}} {{.Image}}'])).stdout, `web running ${image}\n`);
  const tabled = lines((await cli(['ps', '--format', 'table {{.ID}}\\t{{.Names}}'])).stdout);
  t.regex(tabled[0]!, /^CONTAINER ID\s{3,}NAMES$/);
  t.regex(tabled[1]!, /^[0-9a-f]{12}\s{3,}web$/);
  t.is((await cli(['inspect', '--format', '{{.State.Status}}', 'web'])).stdout, 'running\n');
  t.is((await cli(['inspect', '-f', '{{json .Config.Cmd}}', 'web'])).stdout, `${JSON.stringify(['sh', '-c', LOOP])}\n`);
  t.is((await cli(['inspect', '-f', '{{.Config.Cmd}}', 'web'])).stdout, `[sh -c ${LOOP}]\n`);
  t.is((await cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout, `${registry.host}/verbs/box:1\n`);
  const id = (await cli(['images', '--no-trunc', '--format', '{{.ID}}'])).stdout.trim();
  t.regex(id, /^sha256:[0-9a-f]{64}$/);
  t.is((await cli(['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim(), id);
});

test.serial('an unknown --format field, function or container is named in the error, exit 1', async (t) => {
  const field = await failing(['ps', '--format', '{{.Nope}}']);
  t.is(field.code, 1);
  t.regex(field.stderr, /can't evaluate field Nope/);
  const health = await failing(['inspect', '-f', '{{.State.Health.Status}}', 'web']);
  t.is(health.code, 1);
  t.regex(health.stderr, /Health/);
  const fn = await failing(['images', '--format', '{{shout .ID}}']);
  t.is(fn.code, 1);
  t.regex(fn.stderr, /function "shout" not defined/);
  for (const args of [
    ['top', 'nosuch'],
    ['stats', '--no-stream', 'nosuch'],
    ['port', 'nosuch'],
    ['pause', 'nosuch'],
    ['rename', 'nosuch', 'x1'],
  ]) {
    const unknown = await failing(args);
    t.is(unknown.code, 1, args.join(' '));
    t.regex(unknown.stderr, /No such container: nosuch/, args.join(' '));
  }
});

test.serial('port lists published ports as docker does, one port gives its address, an unpublished one is refused', async (t) => {
  t.is((await cli(['port', 'web'])).stdout, `80/tcp -> 127.0.0.1:${hostPort}\n`);
  t.is((await cli(['port', 'web', '80'])).stdout, `127.0.0.1:${hostPort}\n`);
  const none = await failing(['port', 'web', '81/tcp']);
  t.is(none.code, 1);
  t.regex(none.stderr, /No public port '81\/tcp' published for web/);
});

test.serial("top shows ps -ef columns for the container's processes only", async (t) => {
  const output = lines((await cli(['top', 'web'])).stdout);
  t.regex(output[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
  t.true(output.some((line) => line.includes(`sh -c ${LOOP}`)));
  t.false(output.some((line) => /node|dockerd|berth-agent/.test(line)));
  const custom = lines((await cli(['top', 'web', '-o', 'pid,comm'])).stdout);
  t.regex(custom[0]!, /^PID\s+COMMAND$/);
  t.true(custom.slice(1).every((line) => /^\d+\s+(sh|sleep)$/.test(line)));
});

test.serial('stats --no-stream prints one table of cgroup memory, CPU %, PIDs, net and block I/O', async (t) => {
  const output = lines((await cli(['stats', '--no-stream'])).stdout);
  t.is(output.length, 2);
  t.regex(output[0]!, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
  t.regex(
    output[1]!,
    /^[0-9a-f]{12}\s+web\s+\d+\.\d\d%\s+[\d.]+(B|KiB|MiB) \/ 64MiB\s+\d+\.\d\d%\s+[\d.]+k?B \/ [\d.]+k?B\s+[\d.]+[kM]?B \/ [\d.]+[kM]?B\s+[1-9]\d*$/,
  );
  const formatted = await cli(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}} {{.MemUsage}}', 'web']);
  t.regex(formatted.stdout, /^web [1-9]\d* [\d.]+(B|KiB|MiB) \/ 64MiB\n$/);
});

test.serial('stats counts traffic in the container network namespace', async (t) => {
  const before = (await cli(['stats', '--no-stream', '--format', '{{.NetIO}}', 'web'])).stdout;
  await failing(['exec', 'web', 'sh', '-c', 'ping -c 3 -W 1 $(ip route | awk "/default/ {print \\$3}")']);
  const after = (await cli(['stats', '--no-stream', '--format', '{{.NetIO}}', 'web'])).stdout;
  t.not(after, before);
});

test.serial('pause freezes the container (ps says Paused, inspect paused), unpause thaws it', async (t) => {
  t.is((await cli(['pause', 'web'])).stdout, 'web\n');
  t.regex((await cli(['ps', '--format', '{{.Status}}'])).stdout, /^Up .* \(Paused\)\n$/);
  t.is((await cli(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'web'])).stdout, 'paused true\n');
  const state = await readFile(
    `/sys/fs/cgroup/freezer/berth/${(await cli(['inspect', '-f', '{{.Id}}', 'web'])).stdout.trim()}/freezer.state`,
    'utf8',
  );
  t.is(state.trim(), 'FROZEN');
  const again = await failing(['pause', 'web']);
  t.is(again.code, 1);
  t.regex(again.stderr, /is already paused/);
  t.is((await cli(['unpause', 'web'])).stdout, 'web\n');
  t.is((await cli(['inspect', '-f', '{{.State.Status}}', 'web'])).stdout, 'running\n');
  const notPaused = await failing(['unpause', 'web']);
  t.regex(notPaused.stderr, /is not paused/);
});

test.serial('rename changes the name everywhere; a taken or invalid name is refused', async (t) => {
  await cli(['run', '-d', '--name', 'other', image, 'sh', '-c', LOOP]);
  t.is((await cli(['rename', 'other', 'renamed'])).stdout, '');
  t.is((await cli(['inspect', '-f', '{{.Name}}', 'renamed'])).stdout, '/renamed\n');
  const taken = await failing(['rename', 'renamed', 'web']);
  t.is(taken.code, 1);
  t.regex(taken.stderr, /The container name "\/web" is already in use/);
  const invalid = await failing(['rename', 'renamed', 'no/slash']);
  t.regex(invalid.stderr, /Invalid container name/);
  await cli(['rm', '-f', 'renamed']);
});

test.serial('cp copies a file and a directory into the container and back, as docker cp', async (t) => {
  const local = await mkdtemp(path.join(workDir, 'cp-'));
  await mkdir(path.join(local, 'site', 'css'), { recursive: true });
  await writeFile(path.join(local, 'site', 'index.html'), '<h1>hi</h1>\n');
  await writeFile(path.join(local, 'site', 'css', 'a.css'), 'body{}\n');
  await writeFile(path.join(local, 'note.txt'), 'a note\n');

  const file = await cli(['cp', path.join(local, 'note.txt'), 'web:/tmp/']);
  t.regex(file.stderr, /^Successfully copied [\d.]+kB to web:\/tmp\/\n$/);
  t.is((await cli(['exec', 'web', 'cat', '/tmp/note.txt'])).stdout, 'a note\n');
  await cli(['cp', path.join(local, 'note.txt'), 'web:/tmp/renamed.txt']);
  t.is((await cli(['exec', 'web', 'cat', '/tmp/renamed.txt'])).stdout, 'a note\n');

  await cli(['cp', path.join(local, 'site'), 'web:/srv']);
  t.is((await cli(['exec', 'web', 'cat', '/srv/css/a.css'])).stdout, 'body{}\n');
  await cli(['cp', path.join(local, 'site'), 'web:/srv']);
  t.is(
    (await cli(['exec', 'web', 'cat', '/srv/site/index.html'])).stdout,
    '<h1>hi</h1>\n',
    'into an existing directory: under its own name',
  );

  const back = path.join(local, 'back');
  await cli(['cp', 'web:/srv', back]);
  t.is(await readFile(path.join(back, 'css', 'a.css'), 'utf8'), 'body{}\n');
  t.is(await readFile(path.join(back, 'site', 'index.html'), 'utf8'), '<h1>hi</h1>\n');
  await cli(['cp', 'web:/srv/.', path.join(local, 'content-only')]);
  t.is(await readFile(path.join(local, 'content-only', 'index.html'), 'utf8'), '<h1>hi</h1>\n');
});

test.serial('cp keeps hard links as links both ways, pointing into the copy when it renames their directory', async (t) => {
  const local = await mkdtemp(path.join(workDir, 'cp-hardlink-'));
  await mkdir(path.join(local, 'hard'));
  await writeFile(path.join(local, 'hard', 'a.txt'), 'linked\n');
  await link(path.join(local, 'hard', 'a.txt'), path.join(local, 'hard', 'b.txt'));
  // A file at the link's name before the rename: a link left unrenamed would point at it.
  await cli(['exec', 'web', 'sh', '-c', 'mkdir -p /tmp/hard && echo stale > /tmp/hard/a.txt']);

  await cli(['cp', path.join(local, 'hard'), 'web:/tmp/copy']);
  const inside = ['cat /tmp/copy/b.txt', 'stat -c %h /tmp/copy/a.txt', 'stat -c %i /tmp/copy/a.txt /tmp/copy/b.txt | uniq | wc -l'];
  t.is((await cli(['exec', 'web', 'sh', '-c', inside.join('; ')])).stdout, 'linked\n2\n1\n');
  t.is((await cli(['exec', 'web', 'cat', '/tmp/hard/a.txt'])).stdout, 'stale\n', 'the file at the old name is left alone');

  const back = path.join(local, 'back');
  await cli(['cp', 'web:/tmp/copy', back]);
  const [a, b] = await Promise.all([stat(path.join(back, 'a.txt')), stat(path.join(back, 'b.txt'))]);
  t.is(a.ino, b.ino);
  t.is(a.nlink, 2);
  t.is(await readFile(path.join(back, 'b.txt'), 'utf8'), 'linked\n');
});

test.serial('cp -a keeps ownership both ways; without it the copy belongs to root', async (t) => {
  const local = await mkdtemp(path.join(workDir, 'cp-owner-'));
  await writeFile(path.join(local, 'owned.txt'), 'owned\n');
  await chown(path.join(local, 'owned.txt'), 1234, 1234);
  await cli(['cp', path.join(local, 'owned.txt'), 'web:/tmp/plain.txt']);
  await cli(['cp', '-a', path.join(local, 'owned.txt'), 'web:/tmp/kept.txt']);
  t.is((await cli(['exec', 'web', 'stat', '-c', '%u:%g', '/tmp/plain.txt', '/tmp/kept.txt'])).stdout, '0:0\n1234:1234\n');

  await cli(['exec', 'web', 'sh', '-c', 'echo inside > /tmp/inside.txt && chown 1234:1234 /tmp/inside.txt']);
  await cli(['cp', 'web:/tmp/inside.txt', path.join(local, 'plain-out.txt')]);
  await cli(['cp', '-a', 'web:/tmp/inside.txt', path.join(local, 'kept-out.txt')]);
  t.is((await stat(path.join(local, 'plain-out.txt'))).uid, 0);
  t.is((await stat(path.join(local, 'kept-out.txt'))).uid, 1234);
});

test.serial('cp never leaves the container root: a symlink to / inside it resolves to the container root', async (t) => {
  const local = await mkdtemp(path.join(workDir, 'cp-escape-'));
  const marker = `berth-cp-escape-${process.pid}-${Date.now()}`;
  await writeFile(path.join(local, marker), 'must stay inside\n');
  await cli(['exec', 'web', 'ln', '-s', '/', '/tmp/hostroot']);
  await cli(['exec', 'web', 'ln', '-s', '../../../../../../', '/tmp/climb']);

  await cli(['cp', path.join(local, marker), 'web:/tmp/hostroot/']);
  await cli(['cp', path.join(local, marker), `web:/tmp/climb/${marker}.2`]);
  await t.throwsAsync(stat(`/${marker}`), { code: 'ENOENT' });
  await t.throwsAsync(stat(`/${marker}.2`), { code: 'ENOENT' });
  t.is((await cli(['exec', 'web', 'cat', `/${marker}`, `/${marker}.2`])).stdout, 'must stay inside\nmust stay inside\n');

  await cli(['cp', 'web:/tmp/hostroot/etc/image-name', path.join(local, 'image-name')]);
  t.is(await readFile(path.join(local, 'image-name'), 'utf8'), 'verbs-box\n', "the container's file, not the host's");
  await cli(['cp', 'web:/tmp/climb/etc/passwd', path.join(local, 'passwd')]);
  t.regex(await readFile(path.join(local, 'passwd'), 'utf8'), /appuser:x:1234/);
});

test.serial('cp reaches volumes and bind mounts as the container sees them; read-only and tmpfs mounts are refused', async (t) => {
  const local = await mkdtemp(path.join(workDir, 'cp-volume-'));
  const bound = await mkdtemp(path.join(workDir, 'cp-bind-'));
  await writeFile(path.join(local, 'in.txt'), 'into the volume\n');
  await cli([
    'run',
    '-d',
    '--name',
    'vol',
    '-v',
    'cpdata:/data',
    '-v',
    'cpro:/ro:ro',
    '-v',
    `${bound}:/bound`,
    '--tmpfs',
    '/scratch',
    image,
    'sh',
    '-c',
    LOOP,
  ]);
  try {
    await cli(['cp', path.join(local, 'in.txt'), 'vol:/data/']);
    t.is((await cli(['exec', 'vol', 'cat', '/data/in.txt'])).stdout, 'into the volume\n');
    const other = await cli(['run', '--rm', '-v', 'cpdata:/seen', image, 'cat', '/seen/in.txt']);
    t.is(other.stdout, 'into the volume\n', "in the volume itself, not under the mount in the container's root");
    await cli(['cp', path.join(local, 'in.txt'), 'vol:/bound/copied.txt']);
    t.is(await readFile(path.join(bound, 'copied.txt'), 'utf8'), 'into the volume\n');

    await cli(['exec', 'vol', 'sh', '-c', 'echo out of the volume > /data/out.txt && ln -s /etc/image-name /data/to-root']);
    await cli(['cp', 'vol:/data/out.txt', path.join(local, 'out.txt')]);
    t.is(await readFile(path.join(local, 'out.txt'), 'utf8'), 'out of the volume\n');
    await cli(['cp', '-L', 'vol:/data/to-root', path.join(local, 'followed')]);
    t.is(await readFile(path.join(local, 'followed'), 'utf8'), 'verbs-box\n', "a link in a volume to / leads to the container's root");

    const readOnly = await failing(['cp', path.join(local, 'in.txt'), 'vol:/ro/']);
    t.is(readOnly.code, 1);
    t.regex(readOnly.stderr, /\/ro\/ is on a read-only mount or root filesystem/);
    const tmpfs = await failing(['cp', path.join(local, 'in.txt'), 'vol:/scratch/']);
    t.is(tmpfs.code, 1);
    t.regex(tmpfs.stderr, /\/scratch is a tmpfs mount, which cp cannot reach from the host/);
  } finally {
    await cli(['rm', '-f', 'vol']);
    await cli(['volume', 'rm', 'cpdata', 'cpro']);
  }
});

test.serial(
  'cp is not fooled by a symlink swapped in while it copies (CVE-2018-15664): it neither reads nor writes the host',
  async (t) => {
    // The host has a secret at an absolute path the container also has under /w/real; the container swaps
    // /w/d between that directory and a symlink to / as fast as it can. Were the last check and the use of
    // a path apart, the kernel would follow /w/d -> / from the host's root.
    const secretDir = await mkdtemp(path.join(workDir, 'race-'));
    await writeFile(path.join(secretDir, 'secret'), 'HOST SECRET\n');
    const swap = `mkdir -p /w/real${secretDir} && echo inside > /w/real${secretDir}/secret; while :; do mv /w/real /w/d; mv /w/d /w/real; ln -s / /w/d; rm /w/d; done`;
    await cli(['run', '-d', '--name', 'racer', image, 'sh', '-c', swap]);
    const planted = await tarOf([{ name: 'planted', content: 'planted\n' }]);
    try {
      let copiedOut = 0;
      for (let attempt = 0; attempt < 40; attempt++) {
        const read = await rawArchive('GET', `/v1/containers/racer/archive?path=${encodeURIComponent(`/w/d${secretDir}/secret`)}`);
        t.false(read.body.includes('HOST SECRET'), `attempt ${attempt} read the host's file`);
        if (read.status === 200) copiedOut++;
        const written = await rawArchive(
          'PUT',
          `/v1/containers/racer/archive?path=${encodeURIComponent(`/w/d${secretDir}/`)}&name=planted`,
          planted,
        );
        t.true([200, 404].includes(written.status), written.body);
      }
      t.true(copiedOut > 0, 'some copies found the directory in place');
      t.deepEqual((await readdir(secretDir)).sort(), ['secret'], 'nothing was written on the host');
    } finally {
      await cli(['rm', '-f', 'racer']);
    }
  },
);

/** One cp request on the API (the CLI's start-up would slow the attempts down); its status and body as text. */
function rawArchive(method: string, apiPath: string, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ socketPath: agentSocket(agent), method, path: apiPath }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1') }));
      response.once('error', reject);
    });
    outgoing.once('error', reject);
    outgoing.end(body);
  });
}

test.serial('cp copies a symlink as a symlink; -L copies what it points at', async (t) => {
  const local = await mkdtemp(path.join(workDir, 'cp-link-'));
  await cli(['exec', 'web', 'ln', '-s', '/etc/image-name', '/tmp/link']);
  await cli(['cp', 'web:/tmp/link', path.join(local, 'as-link')]);
  t.true((await lstat(path.join(local, 'as-link'))).isSymbolicLink());
  t.is(await readlink(path.join(local, 'as-link')), '/etc/image-name');
  await cli(['cp', '-L', 'web:/tmp/link', path.join(local, 'followed')]);
  t.is(await readFile(path.join(local, 'followed'), 'utf8'), 'verbs-box\n');
});

test.serial('cp names what is wrong: no container side, an empty path, a missing file, an unknown container', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['cp', '/tmp/a', '/tmp/b'], /must specify at least one container source/],
    [['cp', 'web:', '/tmp/b'], /invalid CONTAINER:PATH "web:": the path in the container is empty/],
    [['cp', 'web:/a', 'web:/b'], /copying between containers is not supported/],
    [['cp', 'web:/does/not/exist', path.join(workDir, 'x')], /Could not find the file \/does\/not\/exist in container/],
    [['cp', 'nosuch:/etc/passwd', path.join(workDir, 'x')], /No such container: nosuch/],
    [['cp', path.join(workDir, 'missing'), 'web:/tmp/'], /could not find the file/],
  ];
  for (const [args, message] of cases) {
    const result = await failing(args);
    t.is(result.code, 1, args.join(' '));
    t.regex(result.stderr, message, args.join(' '));
  }
});

test.serial('history and image inspect describe the image as docker does', async (t) => {
  const history = lines((await cli(['history', image])).stdout);
  t.regex(history[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  t.regex(history[1]!, /^[0-9a-f]{12}\s+.+ ago\s+[\d.]+MB$/);
  const inspected = JSON.parse((await cli(['image', 'inspect', image])).stdout) as Array<{
    RepoTags: string[];
    Os: string;
    RootFS: { Layers: string[] };
  }>;
  t.deepEqual(inspected[0]?.RepoTags, [image]);
  t.is(inspected[0]?.Os, 'linux');
  t.is(inspected[0]?.RootFS.Layers.length, 1);
  const unknown = await failing(['image', 'inspect', 'nosuch:1']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /No such image: nosuch:1/);
});

test.serial('tag names the same image again; system df counts it once; system prune removes what is stopped', async (t) => {
  await cli(['tag', image, 'local/alias:v2']);
  const tags = (await cli(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout;
  const ids = lines(tags).map((line) => line.split(' ')[1]);
  t.is(new Set(ids).size, 1);
  t.regex(tags, /^local\/alias:v2 /m);

  await cli(['run', '--name', 'done', image, 'sh', '-c', 'echo data > /tmp/data; exit 0']);
  const df = lines((await cli(['system', 'df'])).stdout);
  t.regex(df[0]!, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
  t.regex(df[1]!, /^Images\s+1\s+1\s+[\d.]+MB\s+0B \(0%\)$/);
  t.regex(df[2]!, /^Containers\s+2\s+1\s+[\d.]+k?B\s+[\d.]+k?B \(\d+%\)$/);
  t.regex(df[3]!, /^Local Volumes\s+0\s+0\s+0B\s+0B$/);
  t.regex(df[4]!, /^Build Cache\s+0\s+0\s+0B\s+0B$/);

  const doneId = (await cli(['inspect', '-f', '{{.Id}}', 'done'])).stdout.trim();
  const prune = await cli(['system', 'prune', '-f']);
  t.regex(prune.stdout, new RegExp(`^Deleted Containers:\\n${doneId}\\n\\nTotal reclaimed space: [\\d.]+k?B\\n$`));
  t.is((await cli(['ps', '-a', '--format', '{{.Names}}'])).stdout, 'web\n');
  const declined = await agent.cli(['system', 'prune'], { input: 'n\n' });
  t.regex(declined.stdout, /WARNING! This will remove:\n {2}- all stopped containers/);
  t.notRegex(declined.stdout, /Total reclaimed space/);
});

test.serial('stats follows a container, redrawing each second, until it is stopped', async (t) => {
  await cli(['run', '-d', '--name', 'brief', image, 'sh', '-c', LOOP]);
  const command = agent.cliCommand(['stats', 'brief']);
  const child = spawn(command.file, command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await eventually(
      async () => output,
      (text) => (text.match(/CONTAINER ID/g) ?? []).length >= 2,
      30_000,
    );
    await cli(['stop', 'brief']);
    t.is(await closed, 0);
  } finally {
    child.kill();
  }
  t.regex(output, /brief\s+\d+\.\d\d%/);
});
