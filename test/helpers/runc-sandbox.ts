import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunRequest } from '../../runtime-agent/api.js';
import { buildOciSpec, hostNofileLimit } from '../../runtime-agent/spec/oci-spec.js';
import { parseRunRequest } from '../../runtime-agent/container/run-options.js';
import { resolveUser } from '../../runtime-agent/spec/user-lookup.js';
import type { ImageRuntimeConfig } from '../../oci/manifest.js';
import { removeDirWithMounts, run, type RunResult } from './exec.js';
import { createBusyboxRootfs } from './test-images.js';

const DEFAULT_IMAGE: ImageRuntimeConfig = { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] };
const CGROUP_ROOT = '/sys/fs/cgroup';

export interface ContainerRun extends RunResult {
  id: string;
  /** stdout, trimmed, split into lines. */
  lines: string[];
}

/**
 * `berth-agent run` without the agent: real runc running the config.json buildOciSpec writes, on a busybox
 * root filesystem, in the foreground. Each sandbox's containers live in their own cgroup parent.
 */
export class RuncSandbox {
  private readonly started: string[] = [];
  private readonly cgroupParent = `berth-test-${randomBytes(4).toString('hex')}`;

  private constructor(
    readonly workDir: string,
    readonly rootfs: string,
    readonly volumesRoot: string,
    readonly nofileLimit: number,
  ) {}

  static async create(name: string): Promise<RuncSandbox> {
    const workDir = await mkdtemp(path.join(tmpdir(), 'berth-runc-'));
    const sandbox = new RuncSandbox(workDir, path.join(workDir, 'rootfs'), path.join(workDir, 'volumes'), await hostNofileLimit());
    await createBusyboxRootfs(sandbox.rootfs, name);
    await mkdir(sandbox.networkDir);
    for (const file of ['hosts', 'hostname', 'resolv.conf']) await writeFile(path.join(sandbox.networkDir, file), `# berth ${file}\n`);
    return sandbox;
  }

  private get networkDir(): string {
    return path.join(this.workDir, 'net');
  }

  /** Parse the request, resolve the user, write the bundle, `runc run` until the container exits. */
  async run(request: Omit<RunRequest, 'image'>, image: ImageRuntimeConfig = DEFAULT_IMAGE): Promise<ContainerRun> {
    const id = randomBytes(32).toString('hex');
    const parsed = parseRunRequest({ image: 'busybox', ...request });
    const spec = { ...parsed, name: parsed.name ?? id.slice(0, 12) };
    const user = await resolveUser(this.rootfs, spec.user ?? image.User ?? undefined);
    const net = this.networkDir;
    const networkFiles = {
      hosts: path.join(net, 'hosts'),
      hostname: path.join(net, 'hostname'),
      resolvConf: path.join(net, 'resolv.conf'),
    };
    const config = buildOciSpec({
      id,
      spec,
      image,
      user,
      rootfs: this.rootfs,
      networkFiles,
      volumesRoot: this.volumesRoot,
      cgroupsPath: `/${this.cgroupParent}/${id}`,
      nofileLimit: this.nofileLimit,
    });
    const bundle = path.join(this.workDir, 'bundles', id);
    await mkdir(bundle, { recursive: true });
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config));
    this.started.push(id);
    const result = await run('runc', ['--root', this.stateDir, 'run', '--bundle', bundle, id], { allowFailure: true, timeoutMs: 30_000 });
    return { ...result, id, lines: result.stdout.trim().split('\n') };
  }

  private get stateDir(): string {
    return path.join(this.workDir, 'state');
  }

  async destroy(): Promise<void> {
    for (const id of this.started) await run('runc', ['--root', this.stateDir, 'delete', '--force', id], { allowFailure: true });
    await this.removeCgroupParent();
    await removeDirWithMounts(this.workDir);
  }

  /** runc removes each container's cgroup but not the parent it made in every hierarchy. */
  private async removeCgroupParent(): Promise<void> {
    for (const hierarchy of await readdir(CGROUP_ROOT)) {
      const parent = path.join(CGROUP_ROOT, hierarchy, this.cgroupParent);
      const children = await readdir(parent, { withFileTypes: true }).catch(() => []);
      for (const child of children.filter((entry) => entry.isDirectory()))
        await rmdir(path.join(parent, child.name)).catch(() => undefined);
      await rmdir(parent).catch(() => undefined);
    }
  }
}

export function sh(script: string): string[] {
  return ['sh', '-c', script];
}
