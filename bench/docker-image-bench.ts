import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DockerDaemon } from '../test/helpers/dockerd.js';
import { DockerWorkbench } from '../test/helpers/docker-workbench.js';
import { blobStream } from './blob-data.js';
import type { Target } from './measurements.js';
import type { BenchSession } from './session.js';

// A push compresses every layer; on a machine shared with other work it can take minutes.
const DOCKER_TIMEOUT_MS = 20 * 60 * 1000;

/** `docker push` and `docker pull` of one image, end to end: MB/s of the image's (uncompressed) layer bytes. */
export interface DockerImageRates {
  push: number;
  pull: number;
}

/**
 * A dockerd of its own (the test helper's light mode) and a local image of `layers` layers of `layerBytes`
 * pseudo-random (incompressible) bytes each, built FROM scratch with one COPY per layer.
 */
export class DockerImageBench {
  private constructor(
    private readonly daemon: DockerDaemon,
    private readonly images: DockerWorkbench,
    private readonly localTag: string,
    private readonly imageBytes: number,
  ) {}

  static async start(session: BenchSession, layers: number, layerBytes: number): Promise<DockerImageBench> {
    const daemon = await DockerDaemon.start();
    session.teardowns.push(() => daemon.stop());
    const context = await mkdtemp(path.join(session.workDir, 'image-'));
    const copies: string[] = [];
    for (let index = 0; index < layers; index += 1) {
      const name = `layer-${index}.bin`;
      await pipeline(blobStream(5000 + index, 0, layerBytes), createWriteStream(path.join(context, name)));
      copies.push(`COPY ${name} /data/${name}`);
    }
    await writeFile(path.join(context, 'Dockerfile'), ['FROM scratch', ...copies, ''].join('\n'));
    const localTag = 'local/bench-image:1';
    await daemon.docker(['build', '--network', 'none', '--tag', localTag, context], { timeoutMs: DOCKER_TIMEOUT_MS });
    await rm(context, { recursive: true, force: true });
    return new DockerImageBench(daemon, new DockerWorkbench(daemon, session.workDir), localTag, layers * layerBytes);
  }

  private reference(target: Target): string {
    return `${new URL(target.server.url).host}/bench/image:1`;
  }

  /** docker push of the whole image to a registry that has none of it (every layer compressed and uploaded). */
  async push(target: Target): Promise<number> {
    const reference = this.reference(target);
    await this.daemon.docker(['tag', this.localTag, reference]);
    return this.rate(() => this.daemon.docker(['push', reference], { timeoutMs: DOCKER_TIMEOUT_MS }));
  }

  /**
   * docker pull of the image after removing every local image (every layer downloaded, verified and unpacked).
   * Pushes come first: they need the local image.
   */
  async pull(target: Target): Promise<number> {
    const references = (await this.daemon.docker(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])).stdout
      .split('\n')
      .filter(Boolean);
    if (references.length > 0) await this.images.removeLocally(...references);
    return this.rate(() => this.daemon.docker(['pull', this.reference(target)], { timeoutMs: DOCKER_TIMEOUT_MS }));
  }

  private async rate(work: () => Promise<unknown>): Promise<number> {
    const started = process.hrtime.bigint();
    await work();
    return this.imageBytes / 1e6 / (Number(process.hrtime.bigint() - started) / 1e9);
  }
}
