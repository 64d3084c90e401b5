import { isIP } from 'node:net';
import { availableParallelism, constants } from 'node:os';
import path from 'node:path';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors, describeIssues } from '../errors.js';
import { parseByteSize } from '../support/byte-size.js';
import { runRequestSchema, type RunRequest } from '../api.js';
import { parseHealthFlags } from './health/health-config.js';
import type { ContainerSpec, MountSpec, NetworkMode, PortMapping, ResourceLimits, RestartPolicy } from './container-spec.js';

/**
 * `run` flags as the user typed them, checked and turned into a ContainerSpec with docker's rules and, where
 * docker has one, docker's wording of the error.
 */

/** A run request that cannot be honoured as given: the user's mistake, answered with 400. */
export class RunOptionsError extends CodedError {
  constructor(message: string) {
    super(AgentErrors.RUN_OPTIONS_INVALID, message);
  }
}

/** A ContainerSpec before the manager names it: the name is the user's, if any. */
export type ParsedRun = Omit<ContainerSpec, 'name'> & { name: string | undefined };

/** Docker's rule for container and volume names (RestrictedNamePattern): at least two characters. */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Docker's floor for `--memory` (linuxMinMemory). */
const MIN_MEMORY_BYTES = 6 * 1024 * 1024;
const CPU_PERIOD_US = 100_000;
const DEFAULT_STOP_TIMEOUT_SECONDS = 10;
/** Default options of a `--tmpfs` mount, as docker gives them; the user's options come after and win. */
const TMPFS_DEFAULT_OPTIONS = ['noexec', 'nosuid', 'nodev'];

export function parseRunRequest(untrusted: RunRequest): ParsedRun {
  // Checked here too, so that every caller of the parser gets an answer rather than a TypeError.
  const checked = runRequestSchema.safeParse(untrusted);
  if (!checked.success) fail(`invalid run request: ${describeIssues(checked.error)}`);
  const request: RunRequest = checked.data;
  const network = parseNetwork(request.network);
  const ports = (request.publish ?? []).flatMap(parsePublish);
  return {
    name: parseName(request.name),
    image: parseImage(request.image),
    entrypoint: request.entrypoint === undefined ? undefined : request.entrypoint === '' ? [] : [request.entrypoint],
    command: request.command && request.command.length > 0 ? [...request.command] : undefined,
    env: (request.env ?? []).map(parseEnv),
    user: request.user || undefined,
    workingDir: parseWorkingDir(request.workdir),
    hostname: parseHostname(request.hostname),
    mounts: parseMounts(request.volumes ?? [], request.tmpfs ?? []),
    readOnlyRootfs: request.readOnly ?? false,
    openStdin: request.interactive ?? false,
    tty: request.tty ?? false,
    consoleSize: request.consoleSize,
    network,
    // Checked whatever the mode, but docker discards them in host mode (with a warning, see runWarnings) and never binds them in none.
    ports: network === 'bridge' ? ports : [],
    limits: parseLimits(request),
    restart: parseRestart(request.restart),
    stopSignal: request.stopSignal === undefined ? undefined : parseSignal(request.stopSignal),
    stopTimeoutSeconds: parseStopTimeout(request.stopTimeout),
    ...parseSecurityOptions(request.securityOpt ?? []),
    healthcheck: parseHealthFlags(request, fail),
    labels: parseLabels(request.labels ?? {}),
  };
}

/** What docker warns about but runs anyway, for the client to print. */
export function runWarnings(request: RunRequest): string[] {
  const warnings: string[] = [];
  if (request.network === 'host' && (request.publish ?? []).length > 0)
    warnings.push('Published ports are discarded when using host network mode');
  return warnings;
}

/** docker refuses an empty key (`--label =x`); values may be anything, empty included. */
function parseLabels(labels: Record<string, string>): Record<string, string> {
  for (const key of Object.keys(labels)) if (key.trim() === '') fail('invalid label: a label key cannot be empty');
  return { ...labels };
}

function fail(message: string): never {
  throw new RunOptionsError(message);
}

export function parseName(name: string | undefined): string | undefined {
  if (name === undefined || name === '') return undefined;
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (!NAME_PATTERN.test(bare)) fail(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return bare;
}

function parseImage(image: string): string {
  if (image.trim() === '') fail('an image is required');
  return image.trim();
}

/** `KEY=VALUE`, or a bare `KEY` that unsets the image's KEY as in docker. */
function parseEnv(entry: string): string {
  const key = entry.split('=', 1)[0];
  if (!key) fail(`invalid environment variable: ${entry}`);
  return entry;
}

function parseWorkingDir(workdir: string | undefined): string | undefined {
  if (workdir === undefined || workdir === '') return undefined;
  if (!workdir.startsWith('/')) fail(`the working directory '${workdir}' is invalid, it needs to be an absolute path`);
  return path.posix.resolve(workdir);
}

/** sethostname(2) takes at most HOST_NAME_MAX bytes; docker lets runc find that out, this says it up front. */
function parseHostname(hostname: string | undefined): string | undefined {
  if (hostname === undefined || hostname === '') return undefined;
  if (Buffer.byteLength(hostname) > 64) fail(`invalid --hostname "${hostname}": longer than 64 bytes`);
  return hostname;
}

function parseNetwork(network: string | undefined): NetworkMode {
  const mode = network || 'bridge';
  if (mode !== 'bridge' && mode !== 'host' && mode !== 'none')
    fail(`invalid --network "${mode}": network ${mode} not found (use bridge, host or none)`);
  return mode;
}

function parseMounts(volumes: readonly string[], tmpfs: readonly string[]): MountSpec[] {
  const mounts = [...volumes.map(parseVolume), ...tmpfs.map(parseTmpfs)];
  const targets = new Set<string>();
  for (const mount of mounts) {
    if (targets.has(mount.target)) fail(`Duplicate mount point: ${mount.target}`);
    targets.add(mount.target);
  }
  return mounts;
}

/** `-v name:/path[:ro|rw]` or `-v /host/path:/path[:ro|rw]`. */
function parseVolume(spec: string): MountSpec {
  const parts = spec.split(':');
  if (parts.length === 1)
    fail(`invalid volume specification: '${spec}': anonymous volumes are not supported, name the volume (name:${spec})`);
  if (parts.length > 3) fail(`invalid volume specification: '${spec}'`);
  const [source = '', target = '', mode = 'rw'] = parts;
  if (mode !== 'ro' && mode !== 'rw') fail(`invalid mode: ${mode}`);
  const type = source.startsWith('/') ? 'bind' : 'volume';
  const invalid = (why: string): never => fail(`invalid volume specification: '${spec}': invalid mount config for type "${type}": ${why}`);
  if (!target.startsWith('/')) invalid(`invalid mount path: '${target}' mount path must be absolute`);
  const cleanTarget = path.posix.resolve(target);
  if (cleanTarget === '/') invalid(`invalid specification: destination can't be '/'`);
  const readOnly = mode === 'ro';
  if (type === 'bind') return { type, source: path.posix.resolve(source), target: cleanTarget, readOnly };
  checkVolumeName(source);
  return { type, name: source, target: cleanTarget, readOnly };
}

export function checkVolumeName(name: string): void {
  if (/^[a-zA-Z0-9]$/.test(name)) fail(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
  if (!NAME_PATTERN.test(name)) {
    fail(
      `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
}

/** Mount flags that cancel each other: the last one given wins (docker's MergeTmpfsOptions). */
const TMPFS_FLAG_GROUPS = [
  ['ro', 'rw'],
  ['suid', 'nosuid'],
  ['dev', 'nodev'],
  ['exec', 'noexec'],
  ['sync', 'async'],
  ['atime', 'noatime'],
  ['diratime', 'nodiratime'],
  ['relatime', 'norelatime'],
  ['strictatime', 'nostrictatime'],
  ['dirsync'],
  ['mand', 'nomand'],
];
const TMPFS_DATA_OPTIONS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/** `--tmpfs /path[:opt,opt...]`. */
function parseTmpfs(spec: string): MountSpec {
  const colon = spec.indexOf(':');
  const target = colon === -1 ? spec : spec.slice(0, colon);
  const given =
    colon === -1
      ? []
      : spec
          .slice(colon + 1)
          .split(',')
          .filter((option) => option !== '' && option !== 'defaults');
  if (!target.startsWith('/')) fail(`invalid --tmpfs "${spec}": invalid mount path: '${target}' mount path must be absolute`);
  const cleanTarget = path.posix.resolve(target);
  if (cleanTarget === '/') fail(`invalid --tmpfs "${spec}": invalid specification: destination can't be '/'`);
  return { type: 'tmpfs', target: cleanTarget, options: mergeTmpfsOptions([...TMPFS_DEFAULT_OPTIONS, ...given], spec) };
}

function mergeTmpfsOptions(options: readonly string[], spec: string): string[] {
  const seen = new Set<string>();
  const merged: string[] = [];
  for (const option of [...options].reverse()) {
    const key = tmpfsOptionKey(option);
    if (key === undefined) fail(`invalid --tmpfs "${spec}": invalid tmpfs option "${option}"`);
    if (seen.has(key)) continue;
    seen.add(key);
    merged.unshift(option);
  }
  return merged;
}

function tmpfsOptionKey(option: string): string | undefined {
  const group = TMPFS_FLAG_GROUPS.find((flags) => flags.includes(option));
  if (group) return group[0];
  const [key, value] = option.split('=', 2);
  return key !== undefined && value !== undefined && value !== '' && TMPFS_DATA_OPTIONS.has(key) ? `${key}=` : undefined;
}

/** `-p [ip:][hostPort:]containerPort[/proto]`, ports or equal-length ranges (`8080-8081:80-81`). */
export function parsePublish(spec: string): PortMapping[] {
  const invalid = (why: string): never => fail(`invalid publish spec "${spec}": ${why}`);
  const slash = spec.lastIndexOf('/');
  const protocol = slash === -1 ? 'tcp' : spec.slice(slash + 1).toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') return invalid(`invalid proto: ${protocol} (tcp or udp)`);
  const parts = (slash === -1 ? spec : spec.slice(0, slash)).split(':');
  const containerPart = parts[parts.length - 1] ?? '';
  const hostPart = parts.length >= 2 ? (parts[parts.length - 2] ?? '') : '';
  const rawIp = parts.length >= 3 ? parts.slice(0, -2).join(':') : '';
  if (containerPart === '') invalid('no port specified');
  const hostIp = rawIp === '' ? '0.0.0.0' : rawIp.replace(/^\[(.*)\]$/, '$1');
  if (!isIP(hostIp)) invalid(`invalid ip address: ${rawIp}`);
  const containerPorts = parsePortRange(containerPart, 1) ?? invalid(`invalid containerPort: ${containerPart}`);
  const hostPorts =
    hostPart === '' ? containerPorts.map(() => 0) : (parsePortRange(hostPart, 0) ?? invalid(`invalid hostPort: ${hostPart}`));
  if (hostPorts.length !== containerPorts.length)
    invalid(`invalid ranges specified for container and host ports: ${containerPart} and ${hostPart}`);
  return containerPorts.map((containerPort, index) => ({ hostIp, hostPort: hostPorts[index] ?? 0, containerPort, protocol }));
}

/** `80` or `80-82` as the list of ports; 0 (a host port picked by the system) only when `lowest` allows it. */
function parsePortRange(text: string, lowest: number): number[] | undefined {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!match) return undefined;
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first < lowest || last > 65535 || last < first) return undefined;
  return Array.from({ length: last - first + 1 }, (_, offset) => first + offset);
}

function parseLimits(request: RunRequest): ResourceLimits {
  const cpuQuota = request.cpus === undefined ? undefined : parseCpus(request.cpus);
  return {
    memoryBytes: request.memory === undefined ? undefined : parseMemory(request.memory),
    cpuQuota,
    cpuPeriod: cpuQuota === undefined ? undefined : CPU_PERIOD_US,
    pidsLimit: parsePidsLimit(request.pidsLimit),
  };
}

/** `--memory` as docker reads it; 0 means no limit, as in docker. */
function parseMemory(text: string): number | undefined {
  const bytes = parseByteSize(text);
  if (bytes === undefined) return fail(`invalid --memory "${text}": invalid size: '${text}'`);
  if (bytes === 0) return undefined;
  if (bytes < MIN_MEMORY_BYTES) fail(`invalid --memory "${text}": minimum memory limit allowed is 6MB`);
  return bytes;
}

/** `--cpus 1.5` as the CFS quota over a 100 ms period; 0 means no limit, as in docker. */
function parseCpus(text: string): number | undefined {
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match || (match[2] === '' && !match[3])) fail(`invalid --cpus "${text}": failed to parse ${text} as a rational number`);
  const fraction = match[3] ?? '';
  if (fraction.length > 9) fail(`invalid --cpus "${text}": value is too precise`);
  const nanoCpus = (match[1] ? -1 : 1) * (Number(match[2] || '0') * 1e9 + Number(fraction.padEnd(9, '0')));
  if (nanoCpus === 0) return undefined;
  const hostCpus = availableParallelism();
  if (nanoCpus < 1e7 || nanoCpus > hostCpus * 1e9) {
    fail(`invalid --cpus "${text}": range of CPUs is from 0.01 to ${hostCpus}.00, as there are only ${hostCpus} CPUs available`);
  }
  return Math.floor((nanoCpus * CPU_PERIOD_US) / 1e9);
}

/** Zero or negative means unlimited, as in docker. */
function parsePidsLimit(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isInteger(limit)) fail(`invalid --pids-limit ${limit}: must be an integer`);
  return limit > 0 ? limit : undefined;
}

/** `no`, `always`, `unless-stopped` or `on-failure[:N]`, with docker's messages. */
function parseRestart(text: string | undefined): RestartPolicy {
  if (text === undefined || text === '') return { name: 'no' };
  const invalid = (why: string): never => fail(`invalid --restart "${text}": ${why}`);
  const parts = text.split(':');
  if (parts.length > 2) invalid('invalid restart policy format');
  const [name, countText] = parts;
  if (countText !== undefined && !/^[+-]?\d+$/.test(countText)) invalid('maximum retry count must be an integer');
  const count = countText === undefined ? undefined : Number(countText);
  switch (name) {
    case 'on-failure':
      if (count !== undefined && count < 0) invalid('maximum retry count cannot be negative');
      return { name, maximumRetryCount: count || undefined };
    case 'no':
    case 'always':
    case 'unless-stopped':
      if (count) invalid(`maximum retry count cannot be used with restart policy '${name}'`);
      return { name };
    default:
      return invalid(`invalid restart policy '${name}' (use no, on-failure[:N], always or unless-stopped)`);
  }
}

const HIGHEST_SIGNAL = 64;

/** A signal by name (`TERM`, `sigterm`, `SIGTERM`) or number, as its SIG name when it has one. */
export function parseSignal(text: string): string {
  const signals = constants.signals as Record<string, number>;
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (number < 1 || number > HIGHEST_SIGNAL) fail(`Invalid signal: ${text}`);
    return Object.keys(signals).find((name) => signals[name] === number) ?? text;
  }
  const name = `SIG${text.toUpperCase().replace(/^SIG/, '')}`;
  if (signals[name] === undefined) fail(`Invalid signal: ${text}`);
  return name;
}

function parseStopTimeout(seconds: number | undefined): number {
  if (seconds === undefined) return DEFAULT_STOP_TIMEOUT_SECONDS;
  if (!Number.isInteger(seconds) || seconds < 0) fail(`invalid --stop-timeout ${seconds}: must be a whole number of seconds, 0 or more`);
  return seconds;
}

/**
 * `--security-opt KEY=VALUE` (docker 20.10 still takes `KEY:VALUE`), with dockerd's messages for a malformed
 * or unknown option. Known: `seccomp=unconfined` (custom profiles are not supported) and
 * `no-new-privileges[=true|false]`; there is no AppArmor or SELinux to configure.
 */
function parseSecurityOptions(options: readonly string[]): { seccomp: boolean; noNewPrivileges: boolean } {
  const parsed = { seccomp: true, noNewPrivileges: true };
  for (const option of options) {
    if (option === 'no-new-privileges') continue;
    const separator = option.includes('=') ? '=' : ':';
    const at = option.indexOf(separator);
    if (at === -1) fail(`invalid --security-opt 1: ${JSON.stringify(option)}`);
    const [key, value] = [option.slice(0, at), option.slice(at + 1)];
    if (key === 'seccomp') {
      if (value !== 'unconfined')
        fail(`invalid --security-opt ${JSON.stringify(option)}: custom seccomp profiles are not supported (only seccomp=unconfined)`);
      parsed.seccomp = false;
    } else if (key === 'no-new-privileges') {
      if (value !== 'true' && value !== 'false') fail(`invalid --security-opt 2: ${JSON.stringify(option)}`);
      parsed.noNewPrivileges = value === 'true';
    } else {
      fail(`invalid --security-opt 2: ${JSON.stringify(option)}`);
    }
  }
  return parsed;
}
