import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Who holds a lease: `<kernel boot id>/<pid namespace>/<pid>/<process nonce>/<lease nonce>`. A lease whose
 * holder ran on this very kernel and pid namespace can be checked for life directly, so a registry restarted
 * after a crash takes over its predecessor's leases at once instead of waiting out their TTL. A holder from
 * anywhere else (another host, another container) is only ever freed by its TTL.
 */
const localScope = readLocalScope();
const processNonce = randomBytes(8).toString('hex');

export function newLeaseHolder(): string {
  return [localScope, String(process.pid), processNonce, randomBytes(8).toString('hex')].join('/');
}

/** True only when the holder certainly is a process of this host that no longer runs. */
export function isDeadLocalHolder(holder: string): boolean {
  const parts = holder.split('/');
  if (localScope === undefined || parts.length !== 5 || `${parts[0]}/${parts[1]}` !== localScope) return false;
  const pid = Number(parts[2]);
  // Same pid, another nonce: this process replaced the holder (a restart in a fresh pid namespace reuses pids).
  if (pid === process.pid) return parts[3] !== processNonce;
  return Number.isInteger(pid) && pid > 0 && !isRunning(pid);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as someone else.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function readLocalScope(): string | undefined {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const pidNamespace = readlinkSync('/proc/self/ns/pid').replace(/\//g, '_');
    return bootId && pidNamespace ? `${bootId}/${pidNamespace}` : undefined;
  } catch {
    return undefined;
  }
}
