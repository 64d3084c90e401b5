import test from 'ava';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import type { RunRequest } from '../../runtime-agent/api.js';
import { buildOciSpec, DEFAULT_CAPABILITIES, DEFAULT_PATH, volumeDirectory, type OciSpecInput } from '../../runtime-agent/spec/oci-spec.js';
import { parseRunRequest, RunOptionsError, runWarnings } from '../../runtime-agent/container/run-options.js';
import { buildSeccompProfile } from '../../runtime-agent/security/seccomp.js';
import { resolveUser, resolveUserSpec, UserLookupError, type ResolvedUser } from '../../runtime-agent/spec/user-lookup.js';
import type { ImageRuntimeConfig } from '../../oci/manifest.js';

// Pure resolution rules, checked against what dockerd 20.10 and runc 1.1 do with the same input.

const ID = 'f00dfacec0de'.repeat(5) + 'beef';
const ROOT: ResolvedUser = { uid: 0, gid: 0, additionalGids: [0], home: '/root' };
const ECHO_IMAGE: ImageRuntimeConfig = { Entrypoint: ['/bin/echo', 'ep'], Cmd: ['cmd1'], Env: ['PATH=/bin', 'FOO=img'] };

function ociSpecFor(request: Omit<RunRequest, 'image'>, image: ImageRuntimeConfig | null = ECHO_IMAGE, extra: Partial<OciSpecInput> = {}) {
  const parsed = parseRunRequest({ image: 'busybox', ...request });
  return buildOciSpec({
    id: ID,
    spec: { ...parsed, name: 'test' },
    image,
    user: ROOT,
    rootfs: '/rootfs',
    volumesRoot: '/volumes',
    nofileLimit: 4096,
    ...extra,
  });
}

const argsCases: [string, Omit<RunRequest, 'image'>, string[]][] = [
  ['the image Entrypoint runs with its Cmd', {}, ['/bin/echo', 'ep', 'cmd1']],
  ['arguments replace Cmd, not Entrypoint', { command: ['a', 'b'] }, ['/bin/echo', 'ep', 'a', 'b']],
  ['--entrypoint drops the image Cmd', { entrypoint: '/bin/echo' }, ['/bin/echo']],
  ['--entrypoint with arguments', { entrypoint: '/bin/echo', command: ['a'] }, ['/bin/echo', 'a']],
  ["--entrypoint '' with arguments runs the arguments", { entrypoint: '', command: ['/bin/echo', 'x'] }, ['/bin/echo', 'x']],
  ['--entrypoint is one executable, spaces and all', { entrypoint: '/bin/echo x' }, ['/bin/echo x']],
];
for (const [title, request, expected] of argsCases) {
  test(`args: ${title}`, (t) => {
    t.deepEqual(ociSpecFor(request).process.args, expected);
  });
}

test("args: nothing to run is docker's 'No command specified'", (t) => {
  t.throws(() => ociSpecFor({ entrypoint: '' }), { instanceOf: RunOptionsError, message: 'No command specified' });
  t.throws(() => ociSpecFor({}, { Env: ['PATH=/bin'] }), { instanceOf: RunOptionsError, message: 'No command specified' });
  t.deepEqual(ociSpecFor({}, { Cmd: ['/bin/sh'] }).process.args, ['/bin/sh']);
  t.deepEqual(ociSpecFor({ command: ['ls'] }, null).process.args, ['ls']);
});

const envCases: [string, string[], ImageRuntimeConfig['Env'], string[]][] = [
  [
    'user entries come after PATH and HOSTNAME and win over the image',
    ['FOO=user', 'BAR=1'],
    ['PATH=/bin', 'FOO=img'],
    ['PATH=/bin', 'HOSTNAME=f00dfacec0de', 'FOO=user', 'BAR=1', 'HOME=/root'],
  ],
  ['a bare -e KEY unsets the image value', ['FOO'], ['PATH=/bin', 'FOO=img'], ['PATH=/bin', 'HOSTNAME=f00dfacec0de', 'HOME=/root']],
  [
    'HOME and HOSTNAME can be overridden',
    ['HOME=/x', 'HOSTNAME=h'],
    ['PATH=/bin', 'FOO=img'],
    ['PATH=/bin', 'HOSTNAME=h', 'HOME=/x', 'FOO=img'],
  ],
  ['PATH defaults when the image has none', [], null, [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=f00dfacec0de', 'HOME=/root']],
  ['the last -e of a key wins', ['A=1', 'A=2'], [], [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=f00dfacec0de', 'A=2', 'HOME=/root']],
];
for (const [title, env, imageEnv, expected] of envCases) {
  test(`env: ${title}`, (t) => {
    t.deepEqual(ociSpecFor({ env }, { ...ECHO_IMAGE, Env: imageEnv }).process.env, expected);
  });
}

test('env: HOME comes from the resolved user unless set', (t) => {
  const user: ResolvedUser = { uid: 1000, gid: 1000, additionalGids: [1000], home: '/home/app' };
  t.deepEqual(ociSpecFor({}, ECHO_IMAGE, { user }).process.env.at(-1), 'HOME=/home/app');
});

test('working directory: -w, else the image WorkingDir, else /', (t) => {
  t.is(ociSpecFor({ workdir: '/srv/../app/' }, { ...ECHO_IMAGE, WorkingDir: '/image' }).process.cwd, '/app');
  t.is(ociSpecFor({}, { ...ECHO_IMAGE, WorkingDir: '/image' }).process.cwd, '/image');
  t.is(ociSpecFor({}, { ...ECHO_IMAGE, WorkingDir: '' }).process.cwd, '/');
  t.throws(() => ociSpecFor({ workdir: 'rel' }), {
    instanceOf: RunOptionsError,
    message: "the working directory 'rel' is invalid, it needs to be an absolute path",
  });
});

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\napp:x:1000:\nextra:x:2000:app,other\nwheel:x:10:root,app\n';

/** What `id` and $HOME showed in docker 20.10 containers with this passwd and group, for each --user. */
const userCases: [string, ResolvedUser][] = [
  ['', { uid: 0, gid: 0, additionalGids: [0, 10], home: '/root' }],
  ['1234', { uid: 1234, gid: 0, additionalGids: [0], home: '/' }],
  ['1234:5555', { uid: 1234, gid: 5555, additionalGids: [5555], home: '/' }],
  ['1000', { uid: 1000, gid: 1000, additionalGids: [1000, 2000, 10], home: '/home/app' }],
  ['app', { uid: 1000, gid: 1000, additionalGids: [1000, 2000, 10], home: '/home/app' }],
  ['app:', { uid: 1000, gid: 1000, additionalGids: [1000, 2000, 10], home: '/home/app' }],
  ['app:extra', { uid: 1000, gid: 2000, additionalGids: [2000], home: '/home/app' }],
  ['app:2000', { uid: 1000, gid: 2000, additionalGids: [2000], home: '/home/app' }],
  ['app:4444', { uid: 1000, gid: 4444, additionalGids: [4444], home: '/home/app' }],
  ['1000:wheel', { uid: 1000, gid: 10, additionalGids: [10], home: '/home/app' }],
  [':extra', { uid: 0, gid: 2000, additionalGids: [2000], home: '/root' }],
  ['0:app', { uid: 0, gid: 1000, additionalGids: [1000], home: '/root' }],
  ['root:extra', { uid: 0, gid: 2000, additionalGids: [2000], home: '/root' }],
];
for (const [spec, expected] of userCases) {
  test(`user: '${spec}' resolves as in docker`, (t) => {
    t.deepEqual(resolveUserSpec(spec, PASSWD, GROUP), expected);
  });
}

const userErrors: [string, string][] = [
  ['nosuch', 'unable to find user nosuch: no matching entries in passwd file'],
  ['app:nosuch', 'unable to find group nosuch: no matching entries in group file'],
  ['app:x:y', 'unable to find group x: no matching entries in group file'],
  ['-5', 'uids and gids must be in range 0-2147483647'],
  ['99999999999', 'uids and gids must be in range 0-2147483647'],
  ['1000:-1', 'uids and gids must be in range 0-2147483647'],
];
for (const [spec, message] of userErrors) {
  test(`user: '${spec}' is refused with docker's message`, (t) => {
    const error = t.throws(() => resolveUserSpec(spec, PASSWD, GROUP), { instanceOf: UserLookupError, message });
    t.true(error instanceof RunOptionsError);
  });
}

test('user: without passwd and group files numbers still work and names do not', (t) => {
  t.deepEqual(resolveUserSpec('1000:1000', undefined, undefined), { uid: 1000, gid: 1000, additionalGids: [1000], home: '/' });
  t.throws(() => resolveUserSpec('app', undefined, undefined), { message: 'unable to find user app: no matching entries in passwd file' });
});

test('user: the rootfs files are read through symlinks resolved inside the rootfs, never the host', async (t) => {
  const rootfs = await mkdtemp(path.join(tmpdir(), 'berth-user-'));
  t.teardown(() => rm(rootfs, { recursive: true, force: true }));
  await mkdir(path.join(rootfs, 'etc'));
  await mkdir(path.join(rootfs, 'data'));
  await writeFile(path.join(rootfs, 'data/passwd'), 'alien:x:4242:4343:alien:/alien:/bin/sh\n');
  await writeFile(path.join(rootfs, 'data/group'), 'aliens:x:4444:alien\n');
  await symlink('../../../../../../data/passwd', path.join(rootfs, 'etc/passwd'));
  await symlink('/data/group', path.join(rootfs, 'etc/group'));
  t.deepEqual(await resolveUser(rootfs, 'alien'), { uid: 4242, gid: 4343, additionalGids: [4343, 4444], home: '/alien' });
  // The host's /etc/passwd has root; the container's files do not.
  await t.throwsAsync(resolveUser(rootfs, 'root'), { message: 'unable to find user root: no matching entries in passwd file' });
  t.deepEqual(await resolveUser(rootfs, undefined), { uid: 0, gid: 0, additionalGids: [0], home: '/' });
});

test("capabilities: root gets docker's 14 in bounding, effective and permitted; others the bounding set only", (t) => {
  t.deepEqual(ociSpecFor({}).process.capabilities, {
    bounding: DEFAULT_CAPABILITIES,
    effective: DEFAULT_CAPABILITIES,
    permitted: DEFAULT_CAPABILITIES,
    inheritable: [],
    ambient: [],
  });
  const user: ResolvedUser = { uid: 1000, gid: 1000, additionalGids: [1000, 10], home: '/home/app' };
  const process = ociSpecFor({}, ECHO_IMAGE, { user }).process;
  t.deepEqual(process.capabilities, { bounding: DEFAULT_CAPABILITIES, effective: [], permitted: [], inheritable: [], ambient: [] });
  t.deepEqual(process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 10] });
  t.true(process.noNewPrivileges);
  t.deepEqual(process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }]);
});

test('network: host has no network namespace and the host name; none and bridge get their own', (t) => {
  const host = ociSpecFor({ network: 'host' });
  t.false(host.linux.namespaces.some((namespace) => namespace.type === 'network'));
  t.is(host.hostname, hostname());
  t.deepEqual(host.linux.sysctl, {});

  const none = ociSpecFor({ network: 'none' });
  t.deepEqual(none.linux.namespaces, [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }]);
  t.is(none.hostname, 'f00dfacec0de');
  t.is(none.linux.sysctl['net.ipv4.ip_unprivileged_port_start'], '0');

  const bridge = ociSpecFor({ hostname: 'web' }, ECHO_IMAGE, { netnsPath: '/run/netns/x' });
  t.deepEqual(bridge.linux.namespaces[1], { type: 'network', path: '/run/netns/x' });
  t.is(bridge.hostname, 'web');
  t.throws(() => ociSpecFor({ network: 'host' }, ECHO_IMAGE, { netnsPath: '/run/netns/x' }));
});

test('mounts: user mounts replace defaults at the same place, parents first, network files read-only with a read-only root', (t) => {
  const networkFiles = { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' };
  const config = ociSpecFor({ readOnly: true, tmpfs: ['/dev/shm:size=1g'], volumes: ['cache:/data/cache', '/srv:/data:ro'] }, ECHO_IMAGE, {
    networkFiles,
  });
  const byDestination = Object.fromEntries(config.mounts.map((mount) => [mount.destination, mount]));
  t.deepEqual(
    config.mounts.map((mount) => mount.destination).filter((destination) => destination === '/dev/shm'),
    ['/dev/shm'],
  );
  t.deepEqual(byDestination['/dev/shm'], {
    destination: '/dev/shm',
    type: 'tmpfs',
    source: 'tmpfs',
    options: ['noexec', 'nosuid', 'nodev', 'size=1g'],
  });
  t.deepEqual(byDestination['/data/cache'], {
    destination: '/data/cache',
    type: 'bind',
    source: volumeDirectory('/volumes', 'cache'),
    options: ['rbind', 'rw', 'rprivate'],
  });
  t.deepEqual(byDestination['/etc/hosts']?.options, ['rbind', 'ro', 'rprivate']);
  const destinations = config.mounts.map((mount) => mount.destination);
  t.true(destinations.indexOf('/data') < destinations.indexOf('/data/cache'));
  t.true(config.root.readonly);
  t.is(volumeDirectory('/volumes', 'cache'), '/volumes/cache/_data');
  t.throws(() => volumeDirectory('/volumes', '../etc'), { instanceOf: RunOptionsError });

  const devMounted = ociSpecFor({ tmpfs: ['/dev'] });
  t.deepEqual(
    devMounted.mounts.filter((mount) => mount.destination.startsWith('/dev')).map((mount) => mount.destination),
    ['/dev'],
  );
});

test('resources: memory with equal swap, CPU quota, pids, cgroup path', (t) => {
  const { linux } = ociSpecFor({ memory: '64m', cpus: '1.5', pidsLimit: 100 });
  t.deepEqual(linux.resources.memory, { limit: 64 * 1024 * 1024, swap: 64 * 1024 * 1024 });
  t.deepEqual(linux.resources.cpu, { quota: 150_000, period: 100_000 });
  t.deepEqual(linux.resources.pids, { limit: 100 });
  t.is(linux.cgroupsPath, `/berth/${ID}`);
  t.deepEqual(linux.resources.devices[0], { allow: false, access: 'rwm' });
  t.true(linux.maskedPaths.includes('/proc/kcore'));
  t.true(linux.readonlyPaths.includes('/proc/sys'));
  const unlimited = ociSpecFor({ memory: '0', cpus: '0', pidsLimit: -1 }).linux.resources;
  t.deepEqual([unlimited.memory, unlimited.cpu, unlimited.pids], [undefined, undefined, undefined]);
});

test('seccomp: the default profile refuses what it does not name, on every ABI of the host; seccomp=unconfined sets none', (t) => {
  const { seccomp } = ociSpecFor({}).linux;
  t.is(seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
  t.deepEqual(
    seccomp?.architectures,
    process.arch === 'arm64' ? ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] : ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  );
  t.true(parseRunRequest({ image: 'x' }).seccomp);
  // docker 20.10 still takes the old `:` separator.
  for (const option of ['seccomp=unconfined', 'seccomp:unconfined'])
    t.is(ociSpecFor({ securityOpt: [option] }).linux.seccomp, undefined, option);
  t.throws(() => buildSeccompProfile(DEFAULT_CAPABILITIES, 's390x'), {
    message: 'no seccomp profile for s390x hosts: run containers with --security-opt seccomp=unconfined',
  });
});

test('no_new_privileges is on unless --security-opt no-new-privileges=false', (t) => {
  t.true(ociSpecFor({}).process.noNewPrivileges);
  t.true(ociSpecFor({ securityOpt: ['no-new-privileges'] }).process.noNewPrivileges);
  t.true(ociSpecFor({ securityOpt: ['no-new-privileges=true'] }).process.noNewPrivileges);
  t.false(ociSpecFor({ securityOpt: ['no-new-privileges=false'] }).process.noNewPrivileges);
  t.false(ociSpecFor({ securityOpt: ['no-new-privileges:false'] }).process.noNewPrivileges);
});

test('seccomp: a syscall a capability guards is allowed only with it; namespaces and mounts only with CAP_SYS_ADMIN', (t) => {
  const allowedWith = (capabilities: readonly string[]) => {
    const rules = buildSeccompProfile(capabilities, 'x64').syscalls;
    return new Set(rules.filter((rule) => rule.action === 'SCMP_ACT_ALLOW' && !rule.args).flatMap((rule) => rule.names));
  };
  const defaults = allowedWith(DEFAULT_CAPABILITIES);
  t.true(defaults.has('chroot'));
  const refused = [
    'unshare',
    'setns',
    'mount',
    'clone',
    'clone3',
    'reboot',
    'settimeofday',
    'init_module',
    'open_by_handle_at',
    'keyctl',
    'io_uring_setup',
  ];
  t.deepEqual(
    refused.filter((name) => defaults.has(name)),
    [],
  );
  const withSysAdmin = allowedWith([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']);
  t.deepEqual(
    refused.filter((name) => !withSysAdmin.has(name)),
    ['reboot', 'settimeofday', 'init_module', 'open_by_handle_at', 'keyctl', 'io_uring_setup'],
  );
  t.false(
    buildSeccompProfile(['CAP_SYS_ADMIN'], 'x64').syscalls.some((rule) => rule.action === 'SCMP_ACT_ERRNO'),
    'clone3 is not refused',
  );
});

test('run options: a full request becomes the container spec docker would make of it', (t) => {
  const parsed = parseRunRequest({
    image: ' 127.0.0.1:5000/app:1 ',
    name: '/web-1',
    command: [],
    publish: ['127.0.0.1:8080:80/udp', '443', '[::1]:9000-9001:90-91/TCP'],
    memory: '1.5g',
    restart: 'on-failure:3',
    tmpfs: ['/run:exec,size=1m,noexec,mode=1777'],
    volumes: ['/tmp/../srv/:/data/../site/'],
    stopSignal: 'term',
    user: '',
  });
  t.is(parsed.name, 'web-1');
  t.is(parsed.image, '127.0.0.1:5000/app:1');
  t.is(parsed.command, undefined);
  t.is(parsed.user, undefined);
  t.deepEqual(parsed.ports, [
    { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'udp' },
    { hostIp: '0.0.0.0', hostPort: 0, containerPort: 443, protocol: 'tcp' },
    { hostIp: '::1', hostPort: 9000, containerPort: 90, protocol: 'tcp' },
    { hostIp: '::1', hostPort: 9001, containerPort: 91, protocol: 'tcp' },
  ]);
  t.is(parsed.limits.memoryBytes, 1.5 * 1024 ** 3);
  t.deepEqual(parsed.restart, { name: 'on-failure', maximumRetryCount: 3 });
  t.deepEqual(parsed.mounts, [
    { type: 'bind', source: '/srv', target: '/site', readOnly: false },
    { type: 'tmpfs', target: '/run', options: ['nosuid', 'nodev', 'size=1m', 'noexec', 'mode=1777'] },
  ]);
  t.is(parsed.stopSignal, 'SIGTERM');
  t.is(parsed.stopTimeoutSeconds, 10);
  t.is(parsed.network, 'bridge');
  t.deepEqual(parseRunRequest({ image: 'x', restart: 'on-failure' }).restart, { name: 'on-failure', maximumRetryCount: undefined });
  t.is(parseRunRequest({ image: 'x', stopSignal: '9' }).stopSignal, 'SIGKILL');
  t.is(parseRunRequest({ image: 'x' }).name, undefined);
});

test('run options: published ports are dropped with host (with docker warning) and none networks', (t) => {
  const request = { image: 'x', network: 'host', publish: ['80:80'] };
  t.deepEqual(parseRunRequest(request).ports, []);
  t.deepEqual(runWarnings(request), ['Published ports are discarded when using host network mode']);
  t.deepEqual(parseRunRequest({ ...request, network: 'none' }).ports, []);
  t.deepEqual(runWarnings({ ...request, network: 'none' }), []);
  t.throws(() => parseRunRequest({ ...request, publish: ['abc'] }), { message: 'invalid publish spec "abc": invalid containerPort: abc' });
});

const optionErrors: [Omit<RunRequest, 'image'> & { image?: unknown }, string][] = [
  [{ image: ' ' }, 'an image is required'],
  [{ image: 7 }, 'invalid run request: image: Invalid input: expected string, received number'],
  [{ name: '_bad' }, 'Invalid container name (_bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'],
  [{ name: 'x' }, 'Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'],
  [{ env: ['=x'] }, 'invalid environment variable: =x'],
  [{ publish: ['abc'] }, 'invalid publish spec "abc": invalid containerPort: abc'],
  [{ publish: ['80:abc'] }, 'invalid publish spec "80:abc": invalid containerPort: abc'],
  [{ publish: ['1.2.3:80:80'] }, 'invalid publish spec "1.2.3:80:80": invalid ip address: 1.2.3'],
  [{ publish: ['80:80/sctp'] }, 'invalid publish spec "80:80/sctp": invalid proto: sctp (tcp or udp)'],
  [{ publish: ['99999:80'] }, 'invalid publish spec "99999:80": invalid hostPort: 99999'],
  [{ publish: [''] }, 'invalid publish spec "": no port specified'],
  [
    { publish: ['8000-8001:80'] },
    'invalid publish spec "8000-8001:80": invalid ranges specified for container and host ports: 80 and 8000-8001',
  ],
  [{ memory: '12q' }, `invalid --memory "12q": invalid size: '12q'`],
  [{ memory: '5m' }, 'invalid --memory "5m": minimum memory limit allowed is 6MB'],
  [{ cpus: 'abc' }, 'invalid --cpus "abc": failed to parse abc as a rational number'],
  [{ cpus: '0.0000000001' }, 'invalid --cpus "0.0000000001": value is too precise'],
  [{ pidsLimit: 1.5 }, 'invalid --pids-limit 1.5: must be an integer'],
  [{ network: 'foo' }, 'invalid --network "foo": network foo not found (use bridge, host or none)'],
  [{ restart: 'foo' }, `invalid --restart "foo": invalid restart policy 'foo' (use no, on-failure[:N], always or unless-stopped)`],
  [{ restart: 'on-failure:x' }, 'invalid --restart "on-failure:x": maximum retry count must be an integer'],
  [{ restart: 'always:3' }, `invalid --restart "always:3": maximum retry count cannot be used with restart policy 'always'`],
  [{ restart: 'on-failure:-1' }, 'invalid --restart "on-failure:-1": maximum retry count cannot be negative'],
  [{ restart: 'on-failure:1:2' }, 'invalid --restart "on-failure:1:2": invalid restart policy format'],
  [
    { volumes: ['vol:rel'] },
    `invalid volume specification: 'vol:rel': invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`,
  ],
  [
    { volumes: ['/:/'] },
    `invalid volume specification: '/:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`,
  ],
  [
    { volumes: ['rel/x:/data'] },
    'create rel/x: "rel/x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
  ],
  [{ volumes: ['x:/data'] }, 'create x: volume name is too short, names should be at least two alphanumeric characters'],
  [{ volumes: ['/tmp:/data:xx'] }, 'invalid mode: xx'],
  [{ volumes: ['a:b:c:d'] }, "invalid volume specification: 'a:b:c:d'"],
  [{ volumes: ['/data'] }, "invalid volume specification: '/data': anonymous volumes are not supported, name the volume (name:/data)"],
  [{ volumes: ['vol:/data'], tmpfs: ['/data/'] }, 'Duplicate mount point: /data'],
  [{ tmpfs: ['rel'] }, `invalid --tmpfs "rel": invalid mount path: 'rel' mount path must be absolute`],
  [{ tmpfs: ['/'] }, `invalid --tmpfs "/": invalid specification: destination can't be '/'`],
  [{ tmpfs: ['/t:foo'] }, 'invalid --tmpfs "/t:foo": invalid tmpfs option "foo"'],
  [{ tmpfs: ['/t:size=1m,bogus=1'] }, 'invalid --tmpfs "/t:size=1m,bogus=1": invalid tmpfs option "bogus=1"'],
  [{ hostname: 'h'.repeat(65) }, `invalid --hostname "${'h'.repeat(65)}": longer than 64 bytes`],
  [{ stopSignal: 'FOO' }, 'Invalid signal: FOO'],
  [{ stopSignal: '0' }, 'Invalid signal: 0'],
  [{ stopTimeout: -5 }, 'invalid --stop-timeout -5: must be a whole number of seconds, 0 or more'],
  [{ securityOpt: ['seccomp'] }, 'invalid --security-opt 1: "seccomp"'],
  [{ securityOpt: ['apparmor=unconfined'] }, 'invalid --security-opt 2: "apparmor=unconfined"'],
  [{ securityOpt: ['no-new-privileges=maybe'] }, 'invalid --security-opt 2: "no-new-privileges=maybe"'],
  [
    { securityOpt: ['seccomp=/etc/profile.json'] },
    'invalid --security-opt "seccomp=/etc/profile.json": custom seccomp profiles are not supported (only seccomp=unconfined)',
  ],
];
for (const [request, message] of optionErrors) {
  test(`run options refused: ${message}`, (t) => {
    t.throws(() => parseRunRequest({ image: 'busybox', ...request } as RunRequest), { instanceOf: RunOptionsError, message });
  });
}

test('run options refused: --cpus beyond the host CPUs, in docker words', (t) => {
  t.throws(() => parseRunRequest({ image: 'x', cpus: '1000' }), {
    instanceOf: RunOptionsError,
    message: /^invalid --cpus "1000": range of CPUs is from 0.01 to \d+\.00, as there are only \d+ CPUs available$/,
  });
});

test("-t sets process.terminal, its size (also set by a poststart hook before the process runs) and docker's TERM=xterm, which the image's or the user's TERM overrides; nothing else changes", (t) => {
  const plain = ociSpecFor({});
  const tty = ociSpecFor({ tty: true, consoleSize: { columns: 77, rows: 21 } });
  t.false(plain.process.terminal);
  t.true(tty.process.terminal);
  t.deepEqual(tty.process.consoleSize, { height: 21, width: 77 });
  t.deepEqual(
    tty.hooks?.poststart.map((hook) => hook.args.slice(-2)),
    [['21', '77']],
  );
  t.is(plain.hooks, undefined);
  t.true(tty.process.env.includes('TERM=xterm'));
  t.false(plain.process.env.some((entry) => entry.startsWith('TERM=')));
  const { hooks: _hooks, ...ttyWithoutHooks } = tty;
  const { consoleSize: _size, ...ttyProcess } = tty.process;
  t.deepEqual(
    { ...ttyWithoutHooks, process: { ...ttyProcess, terminal: false, env: plain.process.env } },
    plain,
    'same isolation either way',
  );
  t.true(ociSpecFor({ tty: true }, { ...ECHO_IMAGE, Env: ['TERM=vt100'] }).process.env.includes('TERM=vt100'));
  t.true(ociSpecFor({ tty: true, env: ['TERM=screen'] }).process.env.includes('TERM=screen'));
});
