import { release } from 'node:os';

/**
 * The container's seccomp filter: the OCI `linux.seccomp` section runc 1.1 compiles into BPF before it
 * execs the container's process. Written for Berth with docker's default profile as the bar it must meet.
 *
 * An allow-list: every syscall not named here fails with EPERM, as if a capability were missing. A deny-list
 * would be shorter, but each kernel release adds syscalls and a deny-list lets every new one through until
 * someone notices; here a new syscall is refused until someone decides it is safe. (runc answers syscalls
 * newer than any this list names with ENOSYS rather than EPERM, so libcs fall back to older ones.)
 *
 * What stays out, and why:
 * - reaching what namespaces do not isolate: the kernel keyrings (keyctl, add_key, request_key), the clock
 *   (settimeofday, clock_settime), the kernel itself (init_module, kexec_load, reboot, acct, swapon,
 *   syslog, quotactl, ioperm, iopl), NUMA placement of memory other processes share (mbind, move_pages)
 * - new namespaces and mounts (unshare, setns, clone with namespace flags, mount, the new mount API,
 *   pivot_root): a user namespace gives its creator every capability inside it, which reopens mounting and
 *   much kernel code that CAP_SYS_ADMIN normally guards
 * - large attack surfaces an ordinary program does not need: bpf, perf_event_open, userfaultfd (used to
 *   stall the kernel mid-copy in exploits), io_uring (its operations bypass this filter entirely),
 *   open_by_handle_at (opens host files by handle: the "shocker" escape), personality flags that switch
 *   ASLR off or make data executable, sockets to the hypervisor (AF_VSOCK)
 * - other processes' memory (ptrace, process_vm_readv/writev) on kernels older than 4.8, where ptrace
 *   could rewrite a syscall after this filter had checked it
 *
 * As in docker, a syscall the kernel guards with a capability is allowed when the container's bounding set
 * holds that capability, so the profile never takes away what a granted capability gives.
 */

export type SeccompAction = 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_MASKED_EQ';
}

export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  /** All must hold for the rule to apply; rules naming the same syscall are alternatives. */
  args?: SeccompArg[];
}

export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: SeccompRule[];
}

const EPERM = 1;
const ENOSYS = 38;
const AF_VSOCK = 40;

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/**
 * The personalities a program may ask for: Linux, 32-bit Linux (`linux32`), either with a 2.6 kernel
 * version (UNAME26, for old build scripts), and 0xffffffff, which only reads the current one. Anything else
 * adds flags such as ADDR_NO_RANDOMIZE or READ_IMPLIES_EXEC that weaken the process's own defences.
 */
const ALLOWED_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const FILE_SYSCALLS = [
  'access',
  'faccessat',
  'faccessat2',
  'open',
  'openat',
  'openat2',
  'creat',
  'close',
  'close_range',
  'read',
  'readv',
  'pread64',
  'preadv',
  'preadv2',
  'write',
  'writev',
  'pwrite64',
  'pwritev',
  'pwritev2',
  'lseek',
  'stat',
  'lstat',
  'fstat',
  'newfstatat',
  'statx',
  'statfs',
  'fstatfs',
  'getdents',
  'getdents64',
  'getcwd',
  'chdir',
  'fchdir',
  'mkdir',
  'mkdirat',
  'rmdir',
  'rename',
  'renameat',
  'renameat2',
  'link',
  'linkat',
  'symlink',
  'symlinkat',
  'unlink',
  'unlinkat',
  'readlink',
  'readlinkat',
  'mknod',
  'mknodat',
  'chmod',
  'fchmod',
  'fchmodat',
  'fchmodat2',
  'chown',
  'fchown',
  'fchownat',
  'lchown',
  'umask',
  'utime',
  'utimes',
  'utimensat',
  'futimesat',
  'truncate',
  'ftruncate',
  'fallocate',
  'fadvise64',
  'readahead',
  'cachestat',
  'fsync',
  'fdatasync',
  'sync',
  'syncfs',
  'sync_file_range',
  'flock',
  'fcntl',
  'dup',
  'dup2',
  'dup3',
  'ioctl',
  'getxattr',
  'lgetxattr',
  'fgetxattr',
  'setxattr',
  'lsetxattr',
  'fsetxattr',
  'listxattr',
  'llistxattr',
  'flistxattr',
  'removexattr',
  'lremovexattr',
  'fremovexattr',
  'copy_file_range',
  'sendfile',
  'splice',
  'tee',
  'vmsplice',
  'inotify_init',
  'inotify_init1',
  'inotify_add_watch',
  'inotify_rm_watch',
  'fanotify_mark',
  // Only describes a file; opening by handle (open_by_handle_at) is what needs guarding.
  'name_to_handle_at',
];

const PROCESS_SYSCALLS = [
  'fork',
  'vfork',
  'execve',
  'execveat',
  'exit',
  'exit_group',
  'wait4',
  'waitid',
  'kill',
  'tkill',
  'tgkill',
  'pidfd_open',
  'pidfd_send_signal',
  'process_mrelease',
  'getpid',
  'getppid',
  'gettid',
  'getpgid',
  'setpgid',
  'getpgrp',
  'getsid',
  'setsid',
  'set_tid_address',
  'set_robust_list',
  'get_robust_list',
  'rseq',
  'prctl',
  'capget',
  'capset',
  'getuid',
  'geteuid',
  'getgid',
  'getegid',
  'getresuid',
  'getresgid',
  'getgroups',
  'setuid',
  'setgid',
  'setreuid',
  'setregid',
  'setresuid',
  'setresgid',
  'setfsuid',
  'setfsgid',
  'setgroups',
  'getpriority',
  'setpriority',
  'ioprio_get',
  'ioprio_set',
  'sched_yield',
  'sched_getaffinity',
  'sched_setaffinity',
  'sched_getattr',
  'sched_setattr',
  'sched_getparam',
  'sched_setparam',
  'sched_getscheduler',
  'sched_setscheduler',
  'sched_get_priority_max',
  'sched_get_priority_min',
  'sched_rr_get_interval',
  'getrlimit',
  'setrlimit',
  'prlimit64',
  'getrusage',
  'times',
  'sysinfo',
  'uname',
  'getcpu',
  'getrandom',
  'get_thread_area',
  'set_thread_area',
  'membarrier',
  'restart_syscall',
  // A process may only narrow what it can do further.
  'seccomp',
  'landlock_create_ruleset',
  'landlock_add_rule',
  'landlock_restrict_self',
];

const MEMORY_SYSCALLS = [
  'brk',
  'mmap',
  'munmap',
  'mremap',
  'mprotect',
  'madvise',
  'mincore',
  'msync',
  'remap_file_pages',
  'mlock',
  'mlock2',
  'mlockall',
  'munlock',
  'munlockall',
  'memfd_create',
  'memfd_secret',
  'pkey_alloc',
  'pkey_free',
  'pkey_mprotect',
  'map_shadow_stack',
  'mseal',
];

const SIGNAL_SYSCALLS = [
  'rt_sigaction',
  'rt_sigprocmask',
  'rt_sigpending',
  'rt_sigsuspend',
  'rt_sigtimedwait',
  'rt_sigqueueinfo',
  'rt_tgsigqueueinfo',
  'rt_sigreturn',
  'sigaltstack',
  'signalfd',
  'signalfd4',
  'pause',
  'alarm',
];

/** Reading clocks; adjtimex and clock_adjtime only change them with CAP_SYS_TIME, which the kernel checks. */
const TIME_SYSCALLS = [
  'clock_gettime',
  'clock_getres',
  'clock_nanosleep',
  'nanosleep',
  'gettimeofday',
  'time',
  'adjtimex',
  'clock_adjtime',
  'getitimer',
  'setitimer',
  'timer_create',
  'timer_delete',
  'timer_getoverrun',
  'timer_gettime',
  'timer_settime',
  'timerfd_create',
  'timerfd_gettime',
  'timerfd_settime',
];

const WAIT_SYSCALLS = [
  'poll',
  'ppoll',
  'select',
  'pselect6',
  'epoll_create',
  'epoll_create1',
  'epoll_ctl',
  'epoll_wait',
  'epoll_pwait',
  'epoll_pwait2',
  'eventfd',
  'eventfd2',
  'futex',
  'futex_waitv',
  'futex_wake',
  'futex_wait',
  'futex_requeue',
  'io_setup',
  'io_destroy',
  'io_submit',
  'io_cancel',
  'io_getevents',
  'io_pgetevents',
];

const IPC_SYSCALLS = [
  'pipe',
  'pipe2',
  'msgget',
  'msgsnd',
  'msgrcv',
  'msgctl',
  'semget',
  'semop',
  'semtimedop',
  'semctl',
  'shmget',
  'shmat',
  'shmdt',
  'shmctl',
  'mq_open',
  'mq_unlink',
  'mq_timedsend',
  'mq_timedreceive',
  'mq_notify',
  'mq_getsetattr',
];

/** Everything on a socket but making one (see socketRules). */
const SOCKET_SYSCALLS = [
  'socketpair',
  'bind',
  'connect',
  'listen',
  'accept',
  'accept4',
  'getsockname',
  'getpeername',
  'getsockopt',
  'setsockopt',
  'sendto',
  'sendmsg',
  'sendmmsg',
  'recvfrom',
  'recvmsg',
  'recvmmsg',
  'shutdown',
];

/**
 * The calls above under their 32-bit names and 64-bit-time variants, for 32-bit programs on a 64-bit host.
 * socketcall multiplexes every socket call behind a pointer the filter cannot read, so a 32-bit x86
 * program could still make an AF_VSOCK socket; refusing it would take networking from all of them.
 */
const COMPAT_SYSCALLS = [
  '_llseek',
  '_newselect',
  'chown32',
  'fchown32',
  'lchown32',
  'fadvise64_64',
  'fcntl64',
  'fstat64',
  'fstatat64',
  'fstatfs64',
  'ftruncate64',
  'lstat64',
  'stat64',
  'statfs64',
  'truncate64',
  'sendfile64',
  'mmap2',
  'getuid32',
  'geteuid32',
  'getgid32',
  'getegid32',
  'getresuid32',
  'getresgid32',
  'getgroups32',
  'setuid32',
  'setgid32',
  'setreuid32',
  'setregid32',
  'setresuid32',
  'setresgid32',
  'setfsuid32',
  'setfsgid32',
  'setgroups32',
  'sigreturn',
  'sigprocmask',
  'ugetrlimit',
  'waitpid',
  'send',
  'recv',
  'socketcall',
  'ipc',
  'epoll_ctl_old',
  'epoll_wait_old',
  'clock_gettime64',
  'clock_getres_time64',
  'clock_nanosleep_time64',
  'clock_adjtime64',
  'timer_gettime64',
  'timer_settime64',
  'timerfd_gettime64',
  'timerfd_settime64',
  'futex_time64',
  'ppoll_time64',
  'pselect6_time64',
  'recvmmsg_time64',
  'rt_sigtimedwait_time64',
  'sched_rr_get_interval_time64',
  'semtimedop_time64',
  'mq_timedsend_time64',
  'mq_timedreceive_time64',
  'io_pgetevents_time64',
  'utimensat_time64',
];

/** What the filter checks on each host: its own ABI and the 32-bit (and x32) ones it can also run. */
const HOST_ARCHITECTURES: Record<string, { architectures: string[]; syscalls: string[] }> = {
  x64: { architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: ['arch_prctl', 'modify_ldt'] },
  arm64: {
    architectures: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
    syscalls: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
  },
};

/** Syscalls that do nothing without a capability (the kernel checks it too): allowed only with it. */
const CAPABILITY_SYSCALLS: Record<string, string[]> = {
  CAP_SYS_ADMIN: [
    'bpf',
    'clone',
    'clone3',
    'fanotify_init',
    'fsconfig',
    'fsmount',
    'fsopen',
    'fspick',
    'lookup_dcookie',
    'mount',
    'mount_setattr',
    'move_mount',
    'open_tree',
    'perf_event_open',
    'quotactl',
    'quotactl_fd',
    'setdomainname',
    'sethostname',
    'setns',
    'syslog',
    'umount',
    'umount2',
    'unshare',
  ],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'pidfd_getfd', 'kcmp'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'],
  CAP_SYSLOG: ['syslog'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
};

/** Tracing one's own children (strace, gdb); safe once the kernel re-checks a syscall a tracer changed (4.8). */
const TRACING_SYSCALLS = ['ptrace', 'process_vm_readv', 'process_vm_writev'];

/**
 * The profile for a container whose bounding set is `capabilities`, on this host (`arch` as process.arch
 * names it). Throws on an architecture the profile does not know rather than run containers unfiltered.
 */
export function buildSeccompProfile(capabilities: readonly string[], arch: string = process.arch): SeccompProfile {
  const host = HOST_ARCHITECTURES[arch];
  if (!host) throw new Error(`no seccomp profile for ${arch} hosts: run containers with --security-opt seccomp=unconfined`);
  const sysAdmin = capabilities.includes('CAP_SYS_ADMIN');
  const allowed = new Set([
    ...FILE_SYSCALLS,
    ...PROCESS_SYSCALLS,
    ...MEMORY_SYSCALLS,
    ...SIGNAL_SYSCALLS,
    ...TIME_SYSCALLS,
    ...WAIT_SYSCALLS,
    ...IPC_SYSCALLS,
    ...SOCKET_SYSCALLS,
    ...COMPAT_SYSCALLS,
    ...host.syscalls,
    ...(kernelAtLeast(4, 8) ? TRACING_SYSCALLS : []),
    ...capabilities.flatMap((capability) => CAPABILITY_SYSCALLS[capability] ?? []),
  ]);
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: [...host.architectures],
    syscalls: [
      { names: [...allowed].sort(), action: 'SCMP_ACT_ALLOW' },
      ...ALLOWED_PERSONALITIES.map((value): SeccompRule => ({
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
      })),
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
      ...(sysAdmin ? [] : cloneWithoutNamespaces()),
    ],
  };
}

/**
 * fork and threads without new namespaces. clone3 passes its flags in memory the filter cannot read, so it
 * is answered ENOSYS: glibc and other libcs then fall back to clone, whose flags the filter checks.
 */
function cloneWithoutNamespaces(): SeccompRule[] {
  return [
    {
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
  ];
}

function kernelAtLeast(major: number, minor: number): boolean {
  const [hostMajor = 0, hostMinor = 0] = release().split(/[.-]/, 2).map(Number);
  return hostMajor > major || (hostMajor === major && hostMinor >= minor);
}
