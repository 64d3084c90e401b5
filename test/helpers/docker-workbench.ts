import type { ExecutionContext } from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DockerDaemon } from './dockerd.js';
import { createBusyboxRootfsTarball } from './test-images.js';

export interface PushOutcome {
  digest: string;
  /** Final progress message per layer, keyed by the short diff ID docker prints (e.g. "Pushed"). */
  layers: Map<string, string>;
  output: string;
}

/** The docker CLI operations the client tests are made of, on one daemon, with build contexts under `workDir`. */
export class DockerWorkbench {
  constructor(
    private readonly daemon: DockerDaemon,
    private readonly workDir: string,
  ) {}

  /** `docker import` of a fresh busybox rootfs: a one-layer local image with `/bin/sh`. */
  async importBusybox(name: string): Promise<string> {
    const tarball = await createBusyboxRootfsTarball(this.workDir, name);
    const tag = `local/${name}:base`;
    await this.daemon.docker(['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin', tarball, tag]);
    return tag;
  }

  /** Legacy `docker build` with no network; `files` are written into the build context next to the Dockerfile. */
  async build(tag: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
    const context = await mkdtemp(path.join(this.workDir, 'context-'));
    await writeFile(path.join(context, 'Dockerfile'), dockerfile);
    // Executable, so that a COPYed script can be run by a later RUN.
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(context, name), content, { mode: 0o755 });
    const { stdout } = await this.daemon.docker(['build', '--network', 'none', '--tag', tag, context]);
    return stdout;
  }

  async push(reference: string): Promise<PushOutcome> {
    const { stdout } = await this.daemon.docker(['push', reference]);
    const digest = /: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(stdout)?.[1];
    if (!digest) throw new Error(`no digest in docker push output:\n${stdout}`);
    const layers = new Map<string, string>();
    for (const [, id, message] of stdout.matchAll(/^([0-9a-f]{12}): (.+)$/gm)) layers.set(id!, message!);
    return { digest, layers, output: stdout };
  }

  async pull(reference: string): Promise<{ digest: string; output: string }> {
    const { stdout } = await this.daemon.docker(['pull', reference]);
    const digest = /^Digest: (sha256:[0-9a-f]{64})$/m.exec(stdout)?.[1];
    if (!digest) throw new Error(`no digest in docker pull output:\n${stdout}`);
    return { digest, output: stdout };
  }

  async inspect(reference: string, format: string): Promise<string> {
    return (await this.daemon.docker(['image', 'inspect', '--format', format, reference])).stdout.trim();
  }

  /** The image's layers as docker's push output names them: the first 12 hex digits of each diff ID. */
  async shortDiffIds(reference: string): Promise<string[]> {
    const diffIds = JSON.parse(await this.inspect(reference, '{{json .RootFS.Layers}}')) as string[];
    return diffIds.map((diffId) => diffId.slice('sha256:'.length, 'sha256:'.length + 12));
  }

  /** Removes images locally; afterwards a pull must fetch every layer from the registry. */
  async removeLocally(...references: string[]): Promise<void> {
    await this.daemon.docker(['rmi', ...references]);
    for (const reference of references) {
      const lookup = await this.daemon.docker(['image', 'inspect', reference], { allowFailure: true });
      if (lookup.code === 0) throw new Error(`${reference} is still present locally after docker rmi`);
    }
  }

  async runContainer(reference: string): Promise<string> {
    return (await this.daemon.docker(['run', '--rm', '--network', 'none', reference])).stdout;
  }
}

/**
 * docker push of a freshly built image (every layer new), removal of it and of `alsoRemove` locally, and a
 * docker pull: asserts every layer was pushed and pulled and the image is the same. Returns the push.
 */
export async function assertPushRemovePull(
  t: ExecutionContext,
  images: DockerWorkbench,
  reference: string,
  layerCount: number,
  alsoRemove: string[] = [],
): Promise<PushOutcome> {
  const imageId = await images.inspect(reference, '{{.Id}}');
  const pushed = await images.push(reference);
  t.deepEqual([...pushed.layers.values()], Array(layerCount).fill('Pushed'), pushed.output);

  await images.removeLocally(reference, ...alsoRemove);
  const pulled = await images.pull(reference);
  t.is(pulled.digest, pushed.digest);
  t.is(pulled.output.match(/: Pull complete$/gm)?.length, layerCount, pulled.output);
  t.is(await images.inspect(reference, '{{.Id}}'), imageId, 'same config digest as the image that was pushed');
  return pushed;
}
