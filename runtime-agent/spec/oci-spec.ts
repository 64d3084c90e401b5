import { readFile } from 'node:fs/promises';
import { hostname as hostHostname } from 'node:os';
import path from 'node:path';
import type { ImageRuntimeConfig } from '../../oci/manifest.js';
import type { ContainerSpec, MountSpec } from '../container/container-spec.js';
import { checkVolumeName, RunOptionsError } from '../container/run-options.js';
import { DEFAULT_TERMINAL_SIZE } from '../runtime/pty-process.js';
import { buildSeccompProfile, type SeccompProfile } from '../security/seccomp.js';
import { consoleSizeHook, type OciHook } from './console-size-hook.js';
import type { ResolvedUser } from './user-lookup.js';

/**
 * The bundle's config.json for runc (OCI runtime spec 1.0.2, as runc 1.1 reads it), shaped like the one
 * dockerd 20.10 hands runc: same capabilities, mounts, masked and read-only paths, device rules and
 * namespaces, and a seccomp profile as protective as docker's default (seccomp.ts) unless the container runs
 * with `--security-opt seccomp=unconfined`. On top of docker's: no_new_privileges and a swap limit equal to
 * the memory limit. No AppArmor profile or SELinux label is set.
 */

export interface OciSpecInput {
  /** The container id; its first 12 characters are the default hostname, as in docker. */
  id: string;
  spec: ContainerSpec;
  /** The image config's runtime section (Entrypoint, Cmd, Env, WorkingDir); null when the image has none. */
  image: ImageRuntimeConfig | null | undefined;
  /** From resolveUser(rootfs, spec.user ?? image.User). */
  user: ResolvedUser;
  /** The container's root filesystem (the overlay mount point). */
  rootfs: string;
  /**
   * A network namespace to join (bridge mode, prepared by the network manager). Without it a bridge or none
   * container gets a fresh one from runc; a host-network container gets no network namespace at all.
   */
  netnsPath?: string;
  /** Files bind-mounted over the container's /etc/hosts, /etc/hostname and /etc/resolv.conf. */
  networkFiles?: { hosts?: string; hostname?: string; resolvConf?: string };
  /** Where named volumes live; see volumeDirectory. */
  volumesRoot: string;
  /** The cgroupfs path (cgroup v1); `/berth/<id>` unless given. */
  cgroupsPath?: string;
  /** RLIMIT_NOFILE for the container, soft and hard: hostNofileLimit(), since nothing may ask above it. */
  nofileLimit: number;
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    /** With `terminal`: its first size (runtimes from runc 1.2 apply it; consoleSizeHook does for runc 1.1). */
    consoleSize?: { height: number; width: number };
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
    oomScoreAdj: number;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  hooks?: { poststart: OciHook[] };
  linux: {
    namespaces: { type: string; path?: string }[];
    sysctl: Record<string, string>;
    resources: {
      devices: { allow: boolean; type?: string; major?: number; minor?: number; access: string }[];
      memory?: { limit: number; swap: number };
      cpu?: { quota: number; period: number };
      pids?: { limit: number };
    };
    cgroupsPath: string;
    maskedPaths: string[];
    readonlyPaths: string[];
    /** Absent when the container runs unconfined. */
    seccomp?: SeccompProfile;
  };
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set (moby oci/caps): CapEff 00000000a80425fb. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];

const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * Deny every device, then allow null, zero, full, urandom, tty and console and deny /dev/net/tun (docker's
 * rules); runc appends its own allowances for the devices it creates itself (pts, ptmx, random).
 */
const DEVICE_RULES = [
  { allow: false, access: 'rwm' },
  ...[
    [1, 5],
    [1, 3],
    [1, 9],
    [1, 8],
    [5, 0],
    [5, 1],
  ].map(([major, minor]) => ({ allow: true, type: 'c', major, minor, access: 'rwm' })),
  { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
];

const SHM_SIZE_BYTES = 64 * 1024 * 1024;

const DEFAULT_MOUNTS: OciMount[] = [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  {
    destination: '/dev/pts',
    type: 'devpts',
    source: 'devpts',
    options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
  },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${SHM_SIZE_BYTES}`] },
];

/** What docker sets in a container's own network namespace: any port may be bound, any group may ping. */
const PRIVATE_NETWORK_SYSCTLS = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' };

export function buildOciSpec(input: OciSpecInput): OciSpec {
  const { spec, image, user } = input;
  const hostname = containerHostname(spec, input.id);
  const capabilities = buildCapabilities(user.uid === 0);
  const consoleSize = spec.consoleSize ?? DEFAULT_TERMINAL_SIZE;
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: spec.tty === true,
      ...(spec.tty === true ? { consoleSize: { height: consoleSize.rows, width: consoleSize.columns } } : {}),
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: resolveArgs(spec, image),
      env: resolveEnv(spec.env, [...terminalEnv(spec), ...(image?.Env ?? [])], hostname, user.home),
      cwd: resolveWorkingDir(spec, image),
      capabilities,
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: input.nofileLimit, soft: input.nofileLimit }],
      noNewPrivileges: spec.noNewPrivileges !== false,
      oomScoreAdj: 0,
    },
    root: { path: input.rootfs, readonly: spec.readOnlyRootfs },
    hostname,
    mounts: buildMounts(input),
    ...(spec.tty === true ? { hooks: { poststart: [consoleSizeHook(consoleSize)] } } : {}),
    linux: {
      namespaces: buildNamespaces(spec, input.netnsPath),
      sysctl: spec.network === 'host' ? {} : { ...PRIVATE_NETWORK_SYSCTLS },
      resources: buildResources(spec),
      cgroupsPath: input.cgroupsPath ?? `/berth/${input.id}`,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      // From the bounding set, as docker does: what any process of the container could ever hold.
      ...(spec.seccomp === false ? {} : { seccomp: buildSeccompProfile(capabilities.bounding) }),
    },
  };
}

/** As docker 20.10: a non-root process keeps the bounding set only; nothing is inheritable or ambient. */
function buildCapabilities(isRoot: boolean): OciSpec['process']['capabilities'] {
  return {
    bounding: [...DEFAULT_CAPABILITIES],
    effective: isRoot ? [...DEFAULT_CAPABILITIES] : [],
    permitted: isRoot ? [...DEFAULT_CAPABILITIES] : [],
    inheritable: [],
    ambient: [],
  };
}

/** `--hostname`, else the host's name with `--network host`, else the id's first 12 characters (docker's rules). */
export function containerHostname(spec: Pick<ContainerSpec, 'hostname' | 'network'>, id: string): string {
  return spec.hostname ?? (spec.network === 'host' ? hostHostname() : id.slice(0, 12));
}

/**
 * Docker's rules: `--entrypoint` (even an empty one) drops the image's Cmd; arguments after the image replace
 * Cmd; the process runs Entrypoint followed by Cmd.
 */
export function resolveArgs(spec: Pick<ContainerSpec, 'entrypoint' | 'command'>, image: ImageRuntimeConfig | null | undefined): string[] {
  const entrypoint = spec.entrypoint ?? image?.Entrypoint ?? [];
  const command = spec.command ?? (spec.entrypoint === undefined ? (image?.Cmd ?? []) : []);
  const args = [...entrypoint, ...command];
  if (args.length === 0) throw new RunOptionsError('No command specified');
  return args;
}

/**
 * Docker's order and precedence: PATH (the image's, else the default) and HOSTNAME first, then the user's
 * `-e` entries, then the image's Env; a later entry replaces an earlier one with the same key in place and
 * a bare `KEY` from the user removes it. HOME comes last from the user's passwd entry unless set (runc's rule).
 */
export function resolveEnv(userEnv: readonly string[], imageEnv: readonly string[], hostname: string, home: string): string[] {
  const userKeys = new Set(userEnv.map(envKey));
  const overrides = [...userEnv, ...imageEnv.filter((entry) => !userKeys.has(envKey(entry)))];
  const env = new Map<string, string | undefined>([
    ['PATH', DEFAULT_PATH],
    ['HOSTNAME', hostname],
  ]);
  for (const entry of overrides) {
    const equals = entry.indexOf('=');
    if (equals === -1) env.delete(entry);
    else env.set(entry.slice(0, equals), entry.slice(equals + 1));
  }
  if (!env.has('HOME')) env.set('HOME', home);
  return [...env].map(([key, value]) => `${key}=${value}`);
}

/** docker's TERM=xterm for a process on a terminal, unless the image or the user says otherwise. */
export function terminalEnv(spec: Pick<ContainerSpec, 'tty'>): string[] {
  return spec.tty === true ? ['TERM=xterm'] : [];
}

function envKey(entry: string): string {
  const equals = entry.indexOf('=');
  return equals === -1 ? entry : entry.slice(0, equals);
}

/** `-w`, else the image's WorkingDir, else `/`; runc creates it when missing (owned by root, as docker does). */
function resolveWorkingDir(spec: ContainerSpec, image: ImageRuntimeConfig | null | undefined): string {
  return path.posix.resolve('/', spec.workingDir ?? (image?.WorkingDir || '/'));
}

/** A named volume's data directory; the caller creates it before the container starts. */
export function volumeDirectory(volumesRoot: string, name: string): string {
  checkVolumeName(name);
  return path.join(volumesRoot, name, '_data');
}

/**
 * Docker's default mounts, minus those a user mount replaces (all of /dev's if the user mounts /dev), then the
 * user's mounts and the network files, parents before children.
 */
function buildMounts(input: OciSpecInput): OciMount[] {
  const userMounts = input.spec.mounts.map((mount) => toOciMount(mount, input.volumesRoot));
  const userTargets = new Set(userMounts.map((mount) => mount.destination));
  const defaults = DEFAULT_MOUNTS.map((mount) => ({ ...mount, options: [...mount.options] })).filter(
    (mount) => !userTargets.has(mount.destination) && !(userTargets.has('/dev') && mount.destination.startsWith('/dev/')),
  );
  const networkFiles = networkFileMounts(input).filter((mount) => !userTargets.has(mount.destination));
  const added = [...userMounts, ...networkFiles].sort((a, b) => depth(a.destination) - depth(b.destination));
  return [...defaults, ...added];
}

function toOciMount(mount: MountSpec, volumesRoot: string): OciMount {
  switch (mount.type) {
    case 'tmpfs':
      return { destination: mount.target, type: 'tmpfs', source: 'tmpfs', options: mount.options };
    case 'bind':
      return bindMount(mount.source, mount.target, !mount.readOnly);
    case 'volume':
      return bindMount(volumeDirectory(volumesRoot, mount.name), mount.target, !mount.readOnly);
  }
}

function bindMount(source: string, destination: string, writable: boolean): OciMount {
  return { destination, type: 'bind', source, options: ['rbind', writable ? 'rw' : 'ro', 'rprivate'] };
}

/** Writable unless the root is read-only, as docker mounts them. */
function networkFileMounts(input: OciSpecInput): OciMount[] {
  const files = input.networkFiles ?? {};
  const writable = !input.spec.readOnlyRootfs;
  return (
    [
      ['/etc/resolv.conf', files.resolvConf],
      ['/etc/hostname', files.hostname],
      ['/etc/hosts', files.hosts],
    ] as const
  ).flatMap(([destination, source]) => (source === undefined ? [] : [bindMount(source, destination, writable)]));
}

function depth(destination: string): number {
  return destination.split('/').length;
}

function buildNamespaces(spec: ContainerSpec, netnsPath: string | undefined): OciSpec['linux']['namespaces'] {
  if (spec.network === 'host' && netnsPath !== undefined) throw new Error('a host-network container cannot join a network namespace');
  const network = spec.network === 'host' ? [] : [netnsPath === undefined ? { type: 'network' } : { type: 'network', path: netnsPath }];
  return [{ type: 'mount' }, ...network, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }];
}

function buildResources(spec: ContainerSpec): OciSpec['linux']['resources'] {
  const { memoryBytes, cpuQuota, cpuPeriod, pidsLimit } = spec.limits;
  return {
    devices: DEVICE_RULES.map((rule) => ({ ...rule })),
    // Swap equal to the limit: the container cannot escape an OOM kill by swapping (docker allows as much again).
    ...(memoryBytes === undefined ? {} : { memory: { limit: memoryBytes, swap: memoryBytes } }),
    ...(cpuQuota === undefined || cpuPeriod === undefined ? {} : { cpu: { quota: cpuQuota, period: cpuPeriod } }),
    ...(pidsLimit === undefined ? {} : { pids: { limit: pidsLimit } }),
  };
}

/** The agent's RLIMIT_NOFILE hard limit: a container may not be given more (the agent lacks CAP_SYS_RESOURCE). */
export async function hostNofileLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const hard = /^Max open files\s+\S+\s+(\d+)/m.exec(limits)?.[1];
  if (hard === undefined) throw new Error('no numeric open files limit in /proc/self/limits');
  return Number(hard);
}
