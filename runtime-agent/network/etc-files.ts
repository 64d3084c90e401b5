import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NetworkMode } from '../container/container-spec.js';
import { ignoreMissing } from './state-files.js';

export interface EtcFileOptions {
  hostname: string;
  ipAddress: string | undefined;
  /** 'host' copies the host's hosts and resolv.conf unchanged (its loopback resolver is reachable there). Default 'bridge'. */
  mode?: NetworkMode;
}

export interface EtcFiles {
  hosts: string;
  hostname: string;
  resolvConf: string;
}

/** Where the host's resolver configuration may be, in order: with systemd-resolved the first names only its 127.0.0.53 stub. */
const HOST_RESOLV_CONFS = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'];

/**
 * Docker's fallback when the host's resolvers are all unreachable from a container (loopback ones): no
 * server at all would leave name lookups failing inside, and the gateway answers no DNS. Images then
 * behave as they do under docker.
 */
export const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

const LOCALHOST_LINES = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/**
 * Writes the container's hosts, hostname and resolv.conf into `directory` (the caller bind-mounts them at
 * /etc/hosts, /etc/hostname and /etc/resolv.conf) and returns their paths.
 */
export async function writeContainerEtcFiles(directory: string, options: EtcFileOptions): Promise<EtcFiles> {
  const files: EtcFiles = {
    hosts: path.join(directory, 'hosts'),
    hostname: path.join(directory, 'hostname'),
    resolvConf: path.join(directory, 'resolv.conf'),
  };
  const hostResolvConfs = await Promise.all(HOST_RESOLV_CONFS.map((file) => readFile(file, 'utf8').catch(ignoreMissing)));
  const present = hostResolvConfs.filter((content) => content !== undefined);
  const hostNetwork = options.mode === 'host';
  await mkdir(directory, { recursive: true });
  await Promise.all([
    writeFile(files.hosts, hostNetwork ? await readFile('/etc/hosts', 'utf8') : containerHosts(options.hostname, options.ipAddress), {
      mode: 0o644,
    }),
    writeFile(files.hostname, `${options.hostname}\n`, { mode: 0o644 }),
    writeFile(files.resolvConf, hostNetwork ? (present[0] ?? '') : containerResolvConf(present), { mode: 0o644 }),
  ]);
  return files;
}

/**
 * The localhost entries and the container's own name: on its address, or (no address, network 'none') on
 * 127.0.1.1 as Debian does for a host without a fixed address, so that resolving one's own name works.
 */
export function containerHosts(hostname: string, ipAddress: string | undefined): string {
  return [...LOCALHOST_LINES, `${ipAddress ?? '127.0.1.1'}\t${hostname}`, ''].join('\n');
}

/**
 * The first of the host's resolver configurations that names a server reachable from a container, without
 * the unreachable ones: loopback servers (the host's own, in its namespace) and IPv6 ones (containers get
 * IPv4 only). Search and options lines are kept. With none left, docker's fallback servers.
 */
export function containerResolvConf(hostResolvConfs: readonly string[]): string {
  const filtered = hostResolvConfs.map(withoutUnreachableNameservers);
  const usable = filtered.find((lines) => lines.some(isNameserverLine));
  const lines = usable ?? [...(filtered[0] ?? []), ...FALLBACK_NAMESERVERS.map((server) => `nameserver ${server}`)];
  return `${lines.join('\n')}\n`;
}

function withoutUnreachableNameservers(content: string): string[] {
  return content
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .filter((line) => {
      if (!isNameserverLine(line)) return true;
      const server = line.split(/\s+/)[1] ?? '';
      return !server.startsWith('127.') && !server.includes(':');
    });
}

function isNameserverLine(line: string): boolean {
  return /^nameserver\s/.test(line);
}
