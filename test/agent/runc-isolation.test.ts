import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import type { RunRequest } from '../../runtime-agent/api.js';
import { buildOciSpec, hostNofileLimit, volumeDirectory } from '../../runtime-agent/container/oci-spec.js';
import { parseRunRequest } from '../../runtime-agent/container/run-options.js';
import { resolveUser } from '../../runtime-agent/container/user-lookup.js';
import type { ImageRuntimeConfig } from '../../runtime-agent/image/manifest.js';
import { removeDirWithMounts, run } from '../helpers/exec.js';
import { createBusyboxRootfs } from '../helpers/test-images.js';

// Real runc (no agent) running the config buildOciSpec writes, on a busybox root filesystem.

const DOCKER_DEFAULT_CAPS = '00000000a80425fb';
const IMAGE: ImageRuntimeConfig = { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] };
/** Each test run's containers live in their own cgroup parent, removed at the end. */
const CGROUP_PARENT = `berth-test-${randomBytes(4).toString('hex')}`;
const CGROUP_ROOT = '/sys/fs/cgroup';

let workDir: string;
let rootfs: string;
let stateDir: string;
let volumesRoot: string;
let nofileLimit: number;
const started: string[] = [];

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-runc-'));
  rootfs = path.join(workDir, 'rootfs');
  stateDir = path.join(workDir, 'state');
  volumesRoot = path.join(workDir, 'volumes');
  await createBusyboxRootfs(rootfs, 'runc-isolation');
  await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\nextra:x:2000:other,app\n');
  await mkdir(path.join(workDir, 'net'));
  for (const file of ['hosts', 'hostname', 'resolv.conf']) await writeFile(path.join(workDir, 'net', file), `# berth ${file}\n`);
  nofileLimit = await hostNofileLimit();
});

test.after.always(async () => {
  for (const id of started) await run('runc', ['--root', stateDir, 'delete', '--force', id], { allowFailure: true });
  await removeCgroupParent();
  if (workDir) await removeDirWithMounts(workDir);
});

/** runc removes each container's cgroup but not the parent it made in every hierarchy. */
async function removeCgroupParent(): Promise<void> {
  for (const hierarchy of await readdir(CGROUP_ROOT)) {
    const parent = path.join(CGROUP_ROOT, hierarchy, CGROUP_PARENT);
    const children = await readdir(parent, { withFileTypes: true }).catch(() => []);
    for (const child of children.filter((entry) => entry.isDirectory())) await rmdir(path.join(parent, child.name)).catch(() => undefined);
    await rmdir(parent).catch(() => undefined);
  }
}

/** `berth-agent run` without the agent: parse, resolve the user, write the bundle, `runc run` in the foreground. */
async function runContainer(request: Omit<RunRequest, 'image'>, image: ImageRuntimeConfig = IMAGE) {
  const id = randomBytes(32).toString('hex');
  const parsed = parseRunRequest({ image: 'busybox', ...request });
  const spec = { ...parsed, name: parsed.name ?? id.slice(0, 12) };
  const user = await resolveUser(rootfs, spec.user ?? image.User ?? undefined);
  const net = path.join(workDir, 'net');
  const networkFiles = { hosts: path.join(net, 'hosts'), hostname: path.join(net, 'hostname'), resolvConf: path.join(net, 'resolv.conf') };
  const config = buildOciSpec({ id, spec, image, user, rootfs, networkFiles, volumesRoot, cgroupsPath: `/${CGROUP_PARENT}/${id}`, nofileLimit });
  const bundle = path.join(workDir, 'bundles', id);
  await mkdir(bundle, { recursive: true });
  await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config));
  started.push(id);
  const result = await run('runc', ['--root', stateDir, 'run', '--bundle', bundle, id], { allowFailure: true, timeoutMs: 30_000 });
  return { ...result, id, lines: result.stdout.trim().split('\n') };
}

function sh(script: string): string[] {
  return ['sh', '-c', script];
}

/** `Name:\tvalue` lines of /proc/self/status as an object. */
function statusFields(lines: readonly string[]): Record<string, string> {
  return Object.fromEntries(lines.map((line) => line.split(/:\s+/, 2) as [string, string]));
}

test('PID 1 is the command, in its own PID and UTS namespaces with the hostname and network files', async (t) => {
  const hostPidNs = await readlink('/proc/self/ns/pid');
  const result = await runContainer({ command: sh('echo $$; tr "\\0" " " < /proc/1/cmdline; echo; hostname; readlink /proc/self/ns/pid; cat /etc/hosts /etc/resolv.conf') });
  t.is(result.code, 0, result.stderr);
  const [pid, cmdline, name, pidNs, hosts, resolvConf] = result.lines;
  t.is(pid, '1');
  t.is(cmdline?.trim(), 'sh -c echo $$; tr "\\0" " " < /proc/1/cmdline; echo; hostname; readlink /proc/self/ns/pid; cat /etc/hosts /etc/resolv.conf');
  t.is(name, result.id.slice(0, 12));
  t.not(pidNs, hostPidNs);
  t.deepEqual([hosts, resolvConf], ['# berth hosts', '# berth resolv.conf']);
});

test('root in the container has exactly docker default 14 capabilities and no new privileges', async (t) => {
  const result = await runContainer({ command: ['grep', '-E', '^(Cap|NoNewPrivs)', '/proc/self/status'] });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(statusFields(result.lines), {
    CapInh: '0000000000000000',
    CapPrm: DOCKER_DEFAULT_CAPS,
    CapEff: DOCKER_DEFAULT_CAPS,
    CapBnd: DOCKER_DEFAULT_CAPS,
    CapAmb: '0000000000000000',
    NoNewPrivs: '1',
  });
});

test('--user by name runs with its uid, primary gid, groups and HOME from the image passwd, without capabilities', async (t) => {
  const result = await runContainer({ user: 'app', command: sh('id; echo $HOME; grep -E "^Cap(Eff|Bnd)" /proc/self/status') });
  t.is(result.code, 0, result.stderr);
  const [id, home, ...caps] = result.lines;
  t.is(id, 'uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),2000(extra)');
  t.is(home, '/home/app');
  t.deepEqual(statusFields(caps), { CapEff: '0000000000000000', CapBnd: DOCKER_DEFAULT_CAPS });

  const withGroup = await runContainer({ user: 'app:extra', command: ['id'] });
  t.is(withGroup.stdout.trim(), 'uid=1000(app) gid=2000(extra) groups=2000(extra)');
});

test('the environment and working directory follow docker: user -e over image Env, HOSTNAME, HOME, -w created', async (t) => {
  const image: ImageRuntimeConfig = { Env: ['PATH=/bin:/usr/bin', 'FOO=image', 'GONE=image', 'KEPT=image'], WorkingDir: '/srv', Cmd: ['env'] };
  const result = await runContainer({ env: ['FOO=user', 'GONE', 'NEW=user'], workdir: '/work/dir', command: sh('pwd; cat /proc/1/environ | tr "\\0" "\\n"') }, image);
  t.is(result.code, 0, result.stderr);
  const [cwd, ...env] = result.lines;
  t.is(cwd, '/work/dir');
  t.deepEqual(env, ['PATH=/bin:/usr/bin', `HOSTNAME=${result.id.slice(0, 12)}`, 'FOO=user', 'NEW=user', 'KEPT=image', 'HOME=/root']);
});

test('masked paths read empty (/proc/kcore where the kernel has it), /proc/sys and /sys are read-only', async (t) => {
  const maskedFiles = ['/proc/kcore', '/proc/keys', '/proc/timer_list'];
  const script = `for f in ${maskedFiles.join(' ')}; do [ -e $f ] && echo "$f $(wc -c < $f)"; done; echo "/proc/acpi $(ls /proc/acpi | wc -l)"`;
  const result = await runContainer({ command: sh(`${script}; echo 1 > /proc/sys/kernel/domainname; touch /sys/x; true`) });
  t.is(result.code, 0, result.stderr);
  const onHost = await Promise.all(maskedFiles.map((file) => stat(file).then(() => [`${file} 0`], () => [])));
  t.deepEqual(result.lines, [...onHost.flat(), '/proc/acpi 0']);
  t.regex(result.stderr, /\/proc\/sys\/kernel\/domainname: Read-only file system/);
  t.regex(result.stderr, /touch: \/sys\/x: Read-only file system/);
});

test('a read-only root refuses writes while a --tmpfs mount takes them', async (t) => {
  const result = await runContainer({ readOnly: true, tmpfs: ['/scratch:size=1m'], command: sh('touch /x; touch /scratch/y && echo tmpfs-write-ok; grep " /scratch " /proc/mounts') });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /touch: \/x: Read-only file system/);
  t.is(result.lines[0], 'tmpfs-write-ok');
  t.regex(result.lines[1] ?? '', /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k/);
});

test('named volumes and bind mounts are mounted where asked, and :ro refuses writes', async (t) => {
  const shared = path.join(workDir, 'shared');
  await mkdir(shared);
  await writeFile(path.join(shared, 'from-host'), 'host file\n');
  await mkdir(volumeDirectory(volumesRoot, 'appdata'), { recursive: true });
  const result = await runContainer({ volumes: ['appdata:/data', `${shared}:/shared:ro`], command: sh('echo written > /data/f; cat /shared/from-host; touch /shared/x') });
  t.regex(result.stderr, /touch: \/shared\/x: Read-only file system/);
  t.is(result.lines[0], 'host file');
  t.is(await readFile(path.join(volumeDirectory(volumesRoot, 'appdata'), 'f'), 'utf8'), 'written\n');
});

test('--memory, --cpus, --pids-limit and the open files limit reach the container', async (t) => {
  const cgroup = (file: string) => `cat /sys/fs/cgroup/${file}`;
  const files = ['memory/memory.limit_in_bytes', 'memory/memory.memsw.limit_in_bytes', 'cpu/cpu.cfs_quota_us', 'cpu/cpu.cfs_period_us', 'pids/pids.max'];
  const result = await runContainer({ memory: '64m', cpus: '1.5', pidsLimit: 50, command: sh([...files.map(cgroup), 'ulimit -Sn', 'ulimit -Hn'].join('; ')) });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(result.lines, ['67108864', '67108864', '150000', '100000', '50', String(nofileLimit), String(nofileLimit)]);
});

test('allocating beyond --memory ends in an OOM kill: exit status 137', async (t) => {
  // The shell keeps the whole command substitution in memory: 48 MiB of it.
  const allocate = sh('x=$(head -c 48m /dev/zero | tr "\\0" a); echo survived');
  const limited = await runContainer({ memory: '16m', command: allocate });
  t.is(limited.code, 137);
  t.false(limited.stdout.includes('survived'));
  const unlimited = await runContainer({ command: allocate });
  t.is(unlimited.stdout.trim(), 'survived');
});

test('forks beyond --pids-limit fail', async (t) => {
  // A child shell tries 20 background sleeps and dies at the first failed fork; the sleeps it started stay.
  const result = await runContainer({ pidsLimit: 10, command: sh("sh -c 'for i in $(seq 20); do sleep 10 & done'; echo exit=$?; ps -o comm") });
  t.regex(result.stderr, /can't fork: Resource temporarily unavailable/);
  const [exit, header, ...processes] = result.lines;
  t.deepEqual([exit, header], ['exit=2', 'COMMAND']);
  t.true(processes.length <= 10, processes.join(' '));
  t.true(processes.filter((name) => name === 'sleep').length >= 5, processes.join(' '));
});

test('--network host shares the host network namespace and name; none has only loopback', async (t) => {
  const host = await runContainer({ network: 'host', command: sh('readlink /proc/self/ns/net; hostname') });
  t.is(host.code, 0, host.stderr);
  t.deepEqual(host.lines, [await readlink('/proc/self/ns/net'), hostname()]);

  const none = await runContainer({ network: 'none', command: ['ls', '/sys/class/net'] });
  t.is(none.code, 0, none.stderr);
  t.deepEqual(none.lines, ['lo']);
});
