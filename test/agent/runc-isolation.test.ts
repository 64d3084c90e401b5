import test from 'ava';
import { mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { volumeDirectory } from '../../runtime-agent/spec/oci-spec.js';
import type { ImageRuntimeConfig } from '../../oci/manifest.js';
import { RuncSandbox, sh } from '../helpers/runc-sandbox.js';

// Real runc (no agent) running the config buildOciSpec writes, on a busybox root filesystem.

const DOCKER_DEFAULT_CAPS = '00000000a80425fb';

let sandbox: RuncSandbox;

test.before(async () => {
  sandbox = await RuncSandbox.create('runc-isolation');
  await writeFile(path.join(sandbox.rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(path.join(sandbox.rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\nextra:x:2000:other,app\n');
});

test.after.always(async () => {
  await sandbox?.destroy();
});

/** `Name:\tvalue` lines of /proc/self/status as an object. */
function statusFields(lines: readonly string[]): Record<string, string> {
  return Object.fromEntries(lines.map((line) => line.split(/:\s+/, 2) as [string, string]));
}

test('PID 1 is the command, in its own PID and UTS namespaces with the hostname and network files', async (t) => {
  const hostPidNs = await readlink('/proc/self/ns/pid');
  const result = await sandbox.run({
    command: sh('echo $$; tr "\\0" " " < /proc/1/cmdline; echo; hostname; readlink /proc/self/ns/pid; cat /etc/hosts /etc/resolv.conf'),
  });
  t.is(result.code, 0, result.stderr);
  const [pid, cmdline, name, pidNs, hosts, resolvConf] = result.lines;
  t.is(pid, '1');
  t.is(
    cmdline?.trim(),
    'sh -c echo $$; tr "\\0" " " < /proc/1/cmdline; echo; hostname; readlink /proc/self/ns/pid; cat /etc/hosts /etc/resolv.conf',
  );
  t.is(name, result.id.slice(0, 12));
  t.not(pidNs, hostPidNs);
  t.deepEqual([hosts, resolvConf], ['# berth hosts', '# berth resolv.conf']);
});

test('root in the container has exactly docker default 14 capabilities and no new privileges', async (t) => {
  const result = await sandbox.run({ command: ['grep', '-E', '^(Cap|NoNewPrivs)', '/proc/self/status'] });
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
  const result = await sandbox.run({ user: 'app', command: sh('id; echo $HOME; grep -E "^Cap(Eff|Bnd)" /proc/self/status') });
  t.is(result.code, 0, result.stderr);
  const [id, home, ...caps] = result.lines;
  t.is(id, 'uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),2000(extra)');
  t.is(home, '/home/app');
  t.deepEqual(statusFields(caps), { CapEff: '0000000000000000', CapBnd: DOCKER_DEFAULT_CAPS });

  const withGroup = await sandbox.run({ user: 'app:extra', command: ['id'] });
  t.is(withGroup.stdout.trim(), 'uid=1000(app) gid=2000(extra) groups=2000(extra)');
});

test('the environment and working directory follow docker: user -e over image Env, HOSTNAME, HOME, -w created', async (t) => {
  const image: ImageRuntimeConfig = {
    Env: ['PATH=/bin:/usr/bin', 'FOO=image', 'GONE=image', 'KEPT=image'],
    WorkingDir: '/srv',
    Cmd: ['env'],
  };
  const result = await sandbox.run(
    { env: ['FOO=user', 'GONE', 'NEW=user'], workdir: '/work/dir', command: sh('pwd; cat /proc/1/environ | tr "\\0" "\\n"') },
    image,
  );
  t.is(result.code, 0, result.stderr);
  const [cwd, ...env] = result.lines;
  t.is(cwd, '/work/dir');
  t.deepEqual(env, ['PATH=/bin:/usr/bin', `HOSTNAME=${result.id.slice(0, 12)}`, 'FOO=user', 'NEW=user', 'KEPT=image', 'HOME=/root']);
});

test('masked paths read empty (/proc/kcore where the kernel has it), /proc/sys and /sys are read-only', async (t) => {
  const maskedFiles = ['/proc/kcore', '/proc/keys', '/proc/timer_list'];
  const script = `for f in ${maskedFiles.join(' ')}; do [ -e $f ] && echo "$f $(wc -c < $f)"; done; echo "/proc/acpi $(ls /proc/acpi | wc -l)"`;
  const result = await sandbox.run({ command: sh(`${script}; echo 1 > /proc/sys/kernel/domainname; touch /sys/x; true`) });
  t.is(result.code, 0, result.stderr);
  const onHost = await Promise.all(
    maskedFiles.map((file) =>
      stat(file).then(
        () => [`${file} 0`],
        () => [],
      ),
    ),
  );
  t.deepEqual(result.lines, [...onHost.flat(), '/proc/acpi 0']);
  t.regex(result.stderr, /\/proc\/sys\/kernel\/domainname: Read-only file system/);
  t.regex(result.stderr, /touch: \/sys\/x: Read-only file system/);
});

test('a read-only root refuses writes while a --tmpfs mount takes them', async (t) => {
  const result = await sandbox.run({
    readOnly: true,
    tmpfs: ['/scratch:size=1m'],
    command: sh('touch /x; touch /scratch/y && echo tmpfs-write-ok; grep " /scratch " /proc/mounts'),
  });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /touch: \/x: Read-only file system/);
  t.is(result.lines[0], 'tmpfs-write-ok');
  t.regex(result.lines[1] ?? '', /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k/);
});

test('named volumes and bind mounts are mounted where asked, and :ro refuses writes', async (t) => {
  const shared = path.join(sandbox.workDir, 'shared');
  await mkdir(shared);
  await writeFile(path.join(shared, 'from-host'), 'host file\n');
  await mkdir(volumeDirectory(sandbox.volumesRoot, 'appdata'), { recursive: true });
  const result = await sandbox.run({
    volumes: ['appdata:/data', `${shared}:/shared:ro`],
    command: sh('echo written > /data/f; cat /shared/from-host; touch /shared/x'),
  });
  t.regex(result.stderr, /touch: \/shared\/x: Read-only file system/);
  t.is(result.lines[0], 'host file');
  t.is(await readFile(path.join(volumeDirectory(sandbox.volumesRoot, 'appdata'), 'f'), 'utf8'), 'written\n');
});

test('--memory, --cpus, --pids-limit and the open files limit reach the container', async (t) => {
  const cgroup = (file: string) => `cat /sys/fs/cgroup/${file}`;
  const files = [
    'memory/memory.limit_in_bytes',
    'memory/memory.memsw.limit_in_bytes',
    'cpu/cpu.cfs_quota_us',
    'cpu/cpu.cfs_period_us',
    'pids/pids.max',
  ];
  const result = await sandbox.run({
    memory: '64m',
    cpus: '1.5',
    pidsLimit: 50,
    command: sh([...files.map(cgroup), 'ulimit -Sn', 'ulimit -Hn'].join('; ')),
  });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(result.lines, ['67108864', '67108864', '150000', '100000', '50', String(sandbox.nofileLimit), String(sandbox.nofileLimit)]);
});

test('allocating beyond --memory ends in an OOM kill: exit status 137', async (t) => {
  // The shell keeps the whole command substitution in memory: 48 MiB of it.
  const allocate = sh('x=$(head -c 48m /dev/zero | tr "\\0" a); echo survived');
  const limited = await sandbox.run({ memory: '16m', command: allocate });
  t.is(limited.code, 137);
  t.false(limited.stdout.includes('survived'));
  const unlimited = await sandbox.run({ command: allocate });
  t.is(unlimited.stdout.trim(), 'survived');
});

test('forks beyond --pids-limit fail', async (t) => {
  // A child shell tries 20 background sleeps and dies at the first failed fork; the sleeps it started stay.
  const result = await sandbox.run({
    pidsLimit: 10,
    command: sh("sh -c 'for i in $(seq 20); do sleep 10 & done'; echo exit=$?; ps -o comm"),
  });
  t.regex(result.stderr, /can't fork: Resource temporarily unavailable/);
  const [exit, header, ...processes] = result.lines;
  t.deepEqual([exit, header], ['exit=2', 'COMMAND']);
  t.true(processes.length <= 10, processes.join(' '));
  // Between PID 1 and ps: the sleeps. On a loaded host ps can see one before its exec (still `sh`) or, since
  // Debian's busybox runs applets through /proc/self/exe, before the applet has named itself (`exe`).
  const sleeps = processes.slice(1, -1);
  t.true(sleeps.length >= 5 && sleeps.every((name) => ['sleep', 'sh', 'exe'].includes(name)), processes.join(' '));
});

test('--network host shares the host network namespace and name; none has only loopback', async (t) => {
  const host = await sandbox.run({ network: 'host', command: sh('readlink /proc/self/ns/net; hostname') });
  t.is(host.code, 0, host.stderr);
  t.deepEqual(host.lines, [await readlink('/proc/self/ns/net'), hostname()]);

  const none = await sandbox.run({ network: 'none', command: ['ls', '/sys/class/net'] });
  t.is(none.code, 0, none.stderr);
  t.deepEqual(none.lines, ['lo']);
});
