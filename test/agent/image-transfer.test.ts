import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { ADMIN, AuthRegistry } from '../helpers/auth-registry.js';
import { DockerDaemon } from '../helpers/dockerd.js';
import { DockerWorkbench } from '../helpers/docker-workbench.js';
import { run } from '../helpers/exec.js';

/**
 * Images leaving and entering the agent: `push` to a Berth registry with auth (mounting blobs it already has,
 * skipping what exists), `save` and `load` in docker's and OCI's archive formats, checked against dockerd.
 */

let registry: AuthRegistry;
let dockerd: DockerDaemon;
let docker: DockerWorkbench;
let agent: AgentDaemon;
let workDir: string;
let app: string;
const DEPLOYER = { username: 'deployer', password: 'deployer-password-1' };

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-transfer-'));
  [registry, dockerd, agent] = await Promise.all([AuthRegistry.start(), DockerDaemon.start(), AgentDaemon.start()]);
  await registry.addUser(DEPLOYER.username, DEPLOYER.password);
  await registry.grant(`user:${DEPLOYER.username}`, 'team/**', ['pull', 'push']);
  await dockerd.docker(['login', registry.host, '-u', ADMIN.username, '--password-stdin'], { input: ADMIN.password });
  docker = new DockerWorkbench(dockerd, workDir);
  const base = await docker.importBusybox('transfer');
  app = `${registry.host}/team/app:1`;
  await docker.build(app, [`FROM ${base}`, 'RUN echo built > /built.txt', 'CMD ["cat", "/built.txt"]'].join('\n'));
  await docker.push(app);
  await agent.cli(['login', '-u', DEPLOYER.username, '--password-stdin', registry.host], { input: `${DEPLOYER.password}\n` });
  await agent.cli(['pull', app]);
});

test.after.always(async () => {
  await agent?.destroy();
  await dockerd?.stop();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const imageId = async (reference: string) => (await agent.cli(['image', 'inspect', '-f', '{{.Id}}', reference])).stdout.trim();
const pushedDigest = (output: string) => /^1: digest: (sha256:[0-9a-f]{64}) size: \d+$/m.exec(output)?.[1];

test.serial('push of a pulled image to another repository mounts its blobs, then docker pulls the same manifest', async (t) => {
  const copy = `${registry.host}/team/copy:1`;
  t.is((await agent.cli(['tag', app, copy])).stdout, '');
  const push = await agent.cli(['push', copy]);
  t.regex(push.stdout, new RegExp(`^The push refers to repository \\[${registry.host}/team/copy\\]$`, 'm'));
  const layers = [...push.stdout.matchAll(/^([0-9a-f]{12}): (.+)$/gm)].filter(([, , action]) => action !== 'Preparing');
  t.is(layers.length, 2);
  for (const [, , action] of layers) t.is(action, 'Mounted from team/app');
  const digest = pushedDigest(push.stdout);
  t.truthy(digest);

  const pulled = await docker.pull(copy);
  t.is(pulled.digest, digest ?? 'no digest in the push output');

  const again = await agent.cli(['push', copy]);
  const repeated = [...again.stdout.matchAll(/^([0-9a-f]{12}): (.+)$/gm)].filter(([, , action]) => action !== 'Preparing');
  t.deepEqual(
    repeated.map(([, , action]) => action),
    ['Layer already exists', 'Layer already exists'],
  );
  t.is(pushedDigest(again.stdout), digest);
});

test.serial('push names what is wrong: an unknown image, a repository without push permission', async (t) => {
  const unknown = await agent.cli(['push', `${registry.host}/team/nothing:1`], { allowFailure: true });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /No such image/);
  const elsewhere = `${registry.host}/other/app:1`;
  await agent.cli(['tag', app, elsewhere]);
  const denied = await agent.cli(['push', elsewhere], { allowFailure: true });
  t.is(denied.code, 1);
  t.regex(denied.stderr, /denied|unauthorized/);
});

test.serial('save then load gives back the same image id, and the loaded image runs', async (t) => {
  const archive = path.join(workDir, 'app.tar');
  const before = await imageId(app);
  await agent.cli(['save', '-o', archive, app]);
  const listing = (await run('tar', ['-tf', archive])).stdout.split('\n');
  t.true(listing.includes('manifest.json') && listing.includes('index.json') && listing.includes('oci-layout'));
  for (const name of (await agent.cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.trim().split('\n'))
    await agent.cli(['rmi', name]);
  t.is((await agent.cli(['images', '-q'])).stdout.trim(), '');

  t.is((await agent.cli(['load', '-i', archive])).stdout, `Loaded image: ${app}\n`);
  t.is(await imageId(app), before);
  t.is((await agent.cli(['run', '--rm', '--network', 'none', app])).stdout, 'built\n');
});

test.serial("docker load accepts the agent's save; the agent's load accepts docker save, from a file or stdin", async (t) => {
  const archive = path.join(workDir, 'for-docker.tar');
  await agent.cli(['save', '-o', archive, app]);
  await dockerd.docker(['rmi', app]);
  const loaded = await dockerd.docker(['load', '-i', archive]);
  t.regex(loaded.stdout, new RegExp(`Loaded image: ${app}`));
  t.is(await docker.inspect(app, '{{.Id}}'), await imageId(app));
  t.is((await dockerd.docker(['run', '--rm', '--network', 'none', app])).stdout, 'built\n');

  const made = 'local/made:1';
  await docker.build(made, [`FROM ${app}`, 'RUN echo made > /made.txt'].join('\n'));
  const dockerArchive = path.join(workDir, 'from-docker.tar');
  await dockerd.docker(['save', '-o', dockerArchive, made]);
  const cli = agent.cliCommand(['load']);
  const fromStdin = await run('sh', ['-c', `"$0" "$@" < ${dockerArchive}`, cli.file, ...cli.args]);
  t.is(fromStdin.stdout, `Loaded image: ${made}\n`);
  t.is(await imageId(made), await docker.inspect(made, '{{.Id}}'));
  t.is((await agent.cli(['run', '--rm', '--network', 'none', made, 'cat', '/made.txt'])).stdout, 'made\n');

  // An image that came from a file has no repository to mount from: its layers are uploaded.
  const target = `${registry.host}/team/made:1`;
  await agent.cli(['tag', made, target]);
  const push = await agent.cli(['push', target]);
  const actions = [...push.stdout.matchAll(/^[0-9a-f]{12}: (.+)$/gm)]
    .map(([, action]) => action)
    .filter((action) => action !== 'Preparing');
  t.true(actions.includes('Pushed'), push.stdout);
  t.is((await docker.pull(target)).digest, pushedDigest(push.stdout) ?? 'no digest in the push output');
});

test.serial('save --format oci writes a plain OCI layout that skopeo reads and the agent loads', async (t) => {
  const archive = path.join(workDir, 'app-oci.tar');
  await agent.cli(['save', '--format', 'oci', '-o', archive, app]);
  const listing = (await run('tar', ['-tf', archive])).stdout.split('\n');
  t.true(listing.includes('index.json') && listing.includes('oci-layout'));
  t.false(listing.includes('manifest.json'));
  const inspected = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${archive}`])).stdout) as { Layers: string[] };
  t.is(inspected.Layers.length, 2);
  const before = await imageId(app);
  await agent.cli(['rmi', app]);
  t.is((await agent.cli(['load', '-i', archive])).stdout, `Loaded image: ${app}\n`);
  t.is(await imageId(app), before);
});

test.serial('save and load name what is wrong', async (t) => {
  const unknown = await agent.cli(['save', '-o', path.join(workDir, 'x.tar'), 'nosuch:1'], { allowFailure: true });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /No such image: nosuch:1/);
  const format = await agent.cli(['save', '--format', 'zip', '-o', path.join(workDir, 'x.tar'), app], { allowFailure: true });
  t.regex(format.stderr, /unknown --format "zip": docker or oci/);
  const junk = path.join(workDir, 'junk.tar');
  await writeFile(junk, 'this is not a tar archive at all'.repeat(40));
  const notTar = await agent.cli(['load', '-i', junk], { allowFailure: true });
  t.is(notTar.code, 1);
  t.regex(notTar.stderr, /archive/);
});
