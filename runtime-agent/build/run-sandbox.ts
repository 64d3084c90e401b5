import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, rmdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ContainerSpec, MountSpec } from '../container/container-spec.js';
import type { ContainerNetwork } from '../network/container-network.js';
import { writeContainerEtcFiles } from '../network/etc-files.js';
import { runHostCommand } from '../support/host-command.js';
import { buildOciSpec } from '../spec/oci-spec.js';
import { overlayOptions, type OverlayDirectories } from '../spec/rootfs.js';
import { resolveUserWith } from '../spec/user-lookup.js';
import { LayeredRoot, type OpaqueMarks } from '../snapshot/layered-root.js';

/**
 * A RUN step's process, in the same sandbox a container gets: the OCI config comes from the container code
 * (buildOciSpec: docker's capabilities, seccomp profile, masked paths, namespaces, no_new_privileges), runc
 * runs it in the foreground with its output piped back. The step's overlay is the first mount runc makes, on
 * `/` in the container's own mount namespace: it goes away with the container, so no `mount` or `umount`
 * process is spent on it, and what the agent needs to know of the root beforehand (the user's passwd entry,
 * which mount points are missing) is read from the layers themselves (LayeredRoot). Mount points runc had to
 * create (for secrets, caches, /proc of a scratch image...) are taken out of the step's changes afterwards,
 * so they never reach a layer.
 */

export interface SandboxOptions {
  runtime: string;
  runcRoot: string;
  nofileLimit: number;
  /** The containers' bridge: a RUN on the default network joins it as a container does. */
  network: ContainerNetwork;
  /** Which snapshot directories are opaque, remembered across steps and builds. */
  opaqueMarks: OpaqueMarks;
}

/** docker build's choices: the containers' bridge, no network at all (only `lo`), or the host's. */
export type RunNetwork = 'default' | 'none' | 'host';

/** What the process's network is made of, and how to take it down. */
interface NetworkSetup {
  netnsPath: string | undefined;
  networkFiles: { hosts: string; resolvConf: string } | undefined;
  release: () => Promise<void>;
}

const HOSTNAME = 'buildkitsandbox';

export interface SandboxRun {
  id: string;
  /** Where config.json is written. */
  bundle: string;
  /** The step's overlay, prepared but not mounted: runc mounts it. */
  overlay: OverlayDirectories;
  args: string[];
  /** The image's Env (wins over argEnv, as ENV wins over ARG). */
  env: string[];
  /** Build arguments in scope, visible to the process but kept out of the image. */
  argEnv: string[];
  user: string | undefined;
  workingDir: string;
  mounts: MountSpec[];
  network: RunNetwork;
  /** Aborted: the process is killed (the step then fails). */
  signal: AbortSignal;
  onOutput: (line: string) => void;
}

/** A mount point runc created: its path in the root and the first ancestor that was missing. */
export interface MountStub {
  target: string;
  top: string;
}

export class RunSandbox {
  constructor(private readonly options: SandboxOptions) {}

  /** Runs the process; the stubs are for removeStubs once the overlay is unmounted. */
  async run(request: SandboxRun): Promise<{ exitCode: number; stubs: MountStub[] }> {
    const network = await this.setUpNetwork(request);
    try {
      const layers = new LayeredRoot(request.overlay.lowerDirsTopFirst, this.options.opaqueMarks);
      const spec = buildOciSpec({
        id: request.id,
        spec: containerSpecOf(request),
        image: { Env: request.argEnv },
        user: await resolveUserWith((file) => layers.hostPath(file), request.user || undefined),
        rootfs: request.overlay.target,
        volumesRoot: request.bundle,
        cgroupsPath: `/berth/${request.id}`,
        nofileLimit: this.options.nofileLimit,
        ...(network.netnsPath ? { netnsPath: network.netnsPath } : {}),
        ...(network.networkFiles ? { networkFiles: network.networkFiles } : {}),
      });
      spec.hostname = HOSTNAME;
      const stubs = await missingMountPoints(
        layers,
        spec.mounts.map((mount) => mount.destination),
      );
      spec.mounts.unshift({ destination: '/', type: 'overlay', source: 'overlay', options: [overlayOptions(request.overlay)] });
      await writeFile(path.join(request.bundle, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
      try {
        return { exitCode: await this.runc(request), stubs };
      } finally {
        await this.deleteLeftover(request.id);
      }
    } finally {
      await network.release();
    }
  }

  /**
   * 'none' is a fresh namespace with only `lo` (runc makes it) and no resolver files; 'default' a namespace on
   * the containers' bridge and 'host' the host's, each with the hosts and resolv.conf a container gets there
   * (bind-mounted, so never part of the layer, as with BuildKit).
   */
  private async setUpNetwork(request: SandboxRun): Promise<NetworkSetup> {
    if (request.network === 'none') return { netnsPath: undefined, networkFiles: undefined, release: async () => undefined };
    const etc = path.join(request.bundle, 'etc');
    if (request.network === 'host') {
      const files = await writeContainerEtcFiles(etc, { hostname: HOSTNAME, ipAddress: undefined, mode: 'host' });
      return { netnsPath: undefined, networkFiles: { hosts: files.hosts, resolvConf: files.resolvConf }, release: async () => undefined };
    }
    // The network's names derive from a container id (hex); a build step has none of its own.
    const attachmentId = randomBytes(32).toString('hex');
    const attachment = await this.options.network.attach(attachmentId, 'bridge', []);
    try {
      const files = await writeContainerEtcFiles(etc, { hostname: HOSTNAME, ipAddress: attachment.ipAddress, mode: 'bridge' });
      return {
        netnsPath: attachment.netnsPath,
        networkFiles: { hosts: files.hosts, resolvConf: files.resolvConf },
        release: () => this.options.network.detach(attachmentId),
      };
    } catch (error) {
      await this.options.network.detach(attachmentId);
      throw error;
    }
  }

  /**
   * `runc run` in the foreground deletes its container when the process ends; only a runc that was itself
   * killed leaves its state behind, and a delete (another runc start-up) is spent only then.
   */
  private async deleteLeftover(id: string): Promise<void> {
    if (!(await lstat(path.join(this.options.runcRoot, id)).catch(() => undefined))) return;
    await runHostCommand(this.options.runtime, ['--root', this.options.runcRoot, 'delete', '--force', id]).catch(() => undefined);
  }

  private runc(request: SandboxRun): Promise<number> {
    const child = spawn(this.options.runtime, ['--root', this.options.runcRoot, 'run', '--bundle', request.bundle, request.id], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream, crlfDelay: Infinity }).on('line', request.onOutput);
    // runc in the foreground cannot pass on a SIGKILL: the container's processes are killed through runc itself.
    const kill = () =>
      void runHostCommand(this.options.runtime, ['--root', this.options.runcRoot, 'kill', '--all', request.id, 'KILL']).catch(
        () => undefined,
      );
    if (request.signal.aborted) kill();
    request.signal.addEventListener('abort', kill);
    return new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
    }).finally(() => request.signal.removeEventListener('abort', kill));
  }
}

function containerSpecOf(request: SandboxRun): ContainerSpec {
  return {
    name: request.id,
    image: '',
    entrypoint: request.args,
    command: [],
    env: request.env,
    user: request.user,
    workingDir: request.workingDir,
    hostname: HOSTNAME,
    mounts: request.mounts,
    readOnlyRootfs: false,
    openStdin: false,
    tty: false,
    consoleSize: undefined,
    healthcheck: undefined,
    labels: undefined,
    network: request.network === 'default' ? 'bridge' : request.network,
    ports: [],
    limits: { memoryBytes: undefined, cpuQuota: undefined, cpuPeriod: undefined, pidsLimit: undefined },
    restart: { name: 'no' },
    stopSignal: undefined,
    stopTimeoutSeconds: 10,
    seccomp: true,
    noNewPrivileges: true,
  };
}

/** For each mount destination the root lacks: the path runc creates for it and its first missing ancestor. */
async function missingMountPoints(root: LayeredRoot, destinations: readonly string[]): Promise<MountStub[]> {
  const missing: MountStub[] = [];
  for (const destination of destinations) {
    const parts = destination.split('/').filter(Boolean);
    for (let depth = 1; depth <= parts.length; depth++) {
      if (await root.locate(parts.slice(0, depth))) continue;
      missing.push({ target: parts.join('/'), top: parts.slice(0, depth).join('/') });
      break;
    }
  }
  return missing;
}

/** Removes each stub and its created parents up to the first missing one, stopping where the step put files of its own. */
export async function removeStubs(upper: string, stubs: readonly MountStub[]): Promise<void> {
  for (const { target, top } of [...stubs].sort((a, b) => b.target.length - a.target.length)) {
    let current = target;
    for (;;) {
      const host = path.join(upper, current);
      const stats = await lstat(host).catch(() => undefined);
      if (stats) {
        const removed = stats.isDirectory()
          ? await rmdir(host).then(
              () => true,
              () => false,
            )
          : stats.size === 0 &&
            (await unlink(host).then(
              () => true,
              () => false,
            ));
        if (!removed) break;
      }
      if (current === top) break;
      current = path.posix.dirname(current);
    }
  }
}
