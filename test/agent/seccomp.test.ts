import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../helpers/free-port.js';
import { RuncSandbox, sh } from '../helpers/runc-sandbox.js';
import { copyHostProgram } from '../helpers/test-images.js';

// The default seccomp profile under real runc, against the same container run with seccomp=unconfined.

const UNCONFINED = { securityOpt: ['seccomp=unconfined'] };
const PERL = '/usr/bin/perl';

/** Syscall numbers for perl's syscall(): busybox has no applet for most of what the profile refuses. */
const SYSCALL_NUMBERS: Record<string, Record<string, number>> = {
  x64: {
    keyctl: 250,
    add_key: 248,
    personality: 135,
    clone3: 435,
    io_uring_setup: 425,
    userfaultfd: 323,
    socket: 41,
    bpf: 321,
    perf_event_open: 298,
  },
  arm64: {
    keyctl: 219,
    add_key: 217,
    personality: 92,
    clone3: 435,
    io_uring_setup: 425,
    userfaultfd: 282,
    socket: 198,
    bpf: 280,
    perf_event_open: 241,
  },
};
const KEY_SPEC_SESSION_KEYRING = -3;
const ADDR_NO_RANDOMIZE = 0x40000;
const UFFD_USER_MODE_ONLY = 1;
const AF_VSOCK = 40;
const SOCK_STREAM = 1;

/** Each probe: a label, the syscall and its arguments; chosen so that only a filter makes them fail with EPERM. */
const PROBES: [string, string, ...(number | string)[]][] = [
  ['keyctl: read the session keyring id', 'keyctl', 0, KEY_SPEC_SESSION_KEYRING, 0],
  ['add_key: add a user key', 'add_key', 'user', 'berth', 'x', 1, KEY_SPEC_SESSION_KEYRING],
  ['personality: switch ASLR off', 'personality', ADDR_NO_RANDOMIZE],
  ['clone3', 'clone3', 0, 0],
  ['io_uring_setup', 'io_uring_setup', 1, 0],
  ['userfaultfd: user-mode only, allowed to anyone', 'userfaultfd', UFFD_USER_MODE_ONLY],
  ['socket: AF_VSOCK', 'socket', AF_VSOCK, SOCK_STREAM, 0],
  ['bpf', 'bpf', 0, 0, 0],
  ['perf_event_open', 'perf_event_open', 0, 0, -1, -1, 0],
];

let sandbox: RuncSandbox;

test.before(async () => {
  sandbox = await RuncSandbox.create('seccomp');
  await copyHostProgram(sandbox.rootfs, PERL);
  await writeFile(path.join(sandbox.rootfs, 'probe.pl'), probeScript());
});

test.after.always(async () => {
  await sandbox?.destroy();
});

/** A perl script printing `label: ok` or `label: <strerror>` per probe. */
function probeScript(): string {
  const numbers = SYSCALL_NUMBERS[process.arch];
  if (!numbers) return 'print "no syscall numbers for this architecture\\n"; exit 1;\n';
  const probes = PROBES.map(
    ([label, name, ...args]) => `["${label}", ${numbers[name]}, ${args.map((arg) => JSON.stringify(arg)).join(', ')}]`,
  );
  return [
    `for my $probe (${probes.join(',\n  ')}) {`,
    '  my ($label, $number, @args) = @$probe;',
    '  my $result = syscall($number, @args);',
    '  print "$label: ", ($result >= 0 ? "ok" : "$!"), "\\n";',
    '}',
    '',
  ].join('\n');
}

test('the process runs in seccomp filter mode under the profile and unfiltered with seccomp=unconfined', async (t) => {
  const command = ['grep', '^Seccomp:', '/proc/self/status'];
  const confined = await sandbox.run({ command });
  t.is(confined.stdout, 'Seccomp:\t2\n', confined.stderr);
  const unconfined = await sandbox.run({ ...UNCONFINED, command });
  t.is(unconfined.stdout, 'Seccomp:\t0\n', unconfined.stderr);
});

test('a user namespace (unshare -U) is refused with EPERM; unconfined, it lets root mount a filesystem without CAP_SYS_ADMIN', async (t) => {
  const confined = await sandbox.run({ command: ['unshare', '-U', 'true'] });
  t.is(confined.code, 1);
  t.is(confined.stderr, 'unshare: unshare(0x10000000): Operation not permitted\n');

  const mountInUserNamespace = ['unshare', '-U', '-r', '-m', 'sh', '-c', 'mount -t tmpfs berth /tmp && grep "^berth /tmp" /proc/mounts'];
  const refused = await sandbox.run({ command: mountInUserNamespace });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /Operation not permitted/);
  const unconfined = await sandbox.run({ ...UNCONFINED, command: mountInUserNamespace });
  t.is(unconfined.code, 0, unconfined.stderr);
  t.regex(unconfined.stdout, /^berth \/tmp tmpfs /);
});

test('keyrings, io_uring, userfaultfd, bpf, perf_event_open, vsock and an ASLR-disabling personality are refused; clone3 answers ENOSYS', async (t) => {
  if (!SYSCALL_NUMBERS[process.arch]) return t.pass(`no syscall numbers for ${process.arch}`);
  const confined = await sandbox.run({ command: [PERL, '/probe.pl'] });
  t.is(confined.code, 0, confined.stderr);
  // ENOSYS, not EPERM: glibc then falls back to clone, whose namespace flags the filter can read.
  t.deepEqual(
    confined.lines,
    PROBES.map(([label, name]) => `${label}: ${name === 'clone3' ? 'Function not implemented' : 'Operation not permitted'}`),
  );

  // The kernel itself lets a container's root do all of these: only the filter stands in the way.
  const unconfined = await sandbox.run({ ...UNCONFINED, command: [PERL, '/probe.pl'] });
  t.is(unconfined.code, 0, unconfined.stderr);
  t.is(unconfined.lines.length, PROBES.length);
  for (const line of unconfined.lines) t.notRegex(line, /Operation not permitted|Function not implemented/);
});

test('ordinary work runs under the profile: files, pipes, jobs, fork from glibc, servers and clients on sockets, linux32, chroot', async (t) => {
  const [httpPort, ncPort] = await Promise.all([freePort(), freePort()]);
  const script = [
    'set -e',
    'mkdir -p /srv/www && cd /srv/www && echo served > index.html && chmod 640 index.html && stat -c %a index.html',
    'cat index.html | tr a-z A-Z',
    'ls /bin | grep -c "^sh$"',
    'sleep 0.1 & wait $! && echo waited',
    'date +%Y > /dev/null && id -u',
    `httpd -p 127.0.0.1:${httpPort} -h /srv/www && wget -qO- http://127.0.0.1:${httpPort}/index.html`,
    // The client tries until the listener is up (bounded), and the listener's own exit says the bytes are written.
    `timeout 20 nc -l -p ${ncPort} > /tmp/received & listener=$!`,
    `for try in $(seq 100); do echo over-nc | nc 127.0.0.1 ${ncPort} 2> /dev/null && break; sleep 0.1; done`,
    'wait $listener && cat /tmp/received',
    `${PERL} -e 'my $pid = fork; exit 7 unless $pid; waitpid($pid, 0); print $? >> 8, "\\n"'`,
    'linux32 true && echo linux32',
    'chroot / true && echo chrooted',
  ].join('\n');
  const result = await sandbox.run({ network: 'host', command: sh(script) });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(result.lines, ['640', 'SERVED', '1', 'waited', '0', 'served', 'over-nc', '7', 'linux32', 'chrooted']);
});
