import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DockerDaemon } from './dockerd.js';
import { run } from './exec.js';
import { request } from './http-client.js';
import { buildTestImage, tarDirectory, writeOciLayout } from './test-images.js';

export type PushClient = 'docker' | 'skopeo';

/** One push of a fresh image (a layer of its own) by a real client, and whether the client reported success. */
export interface PushAttempt {
  client: PushClient;
  repository: string;
  tag: string;
  startedAt: number;
  endedAt: number;
  /** The client exited 0: the registry answered its manifest PUT with 201. */
  acknowledged: boolean;
  /** The manifest digest the client pushed (known up front for skopeo, from the output for docker). */
  digest: string | undefined;
  output: string;
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');
const PUSH_TIMEOUT_MS = 30_000;

/** Pushes fresh images to `host` with docker (imported, so every push uploads a new layer) or skopeo. */
export class ImagePusher {
  constructor(
    private readonly daemon: DockerDaemon,
    private readonly workDir: string,
    private readonly host: string,
  ) {}

  async push(client: PushClient, tag: string): Promise<PushAttempt> {
    const repository = `ha/${client}`;
    const startedAt = Date.now();
    const outcome = client === 'docker' ? await this.pushWithDocker(repository, tag) : await this.pushWithSkopeo(repository, tag);
    return { client, repository, tag, startedAt, endedAt: Date.now(), ...outcome };
  }

  private async pushWithDocker(repository: string, tag: string): Promise<Pick<PushAttempt, 'acknowledged' | 'digest' | 'output'>> {
    const dir = await mkdtemp(path.join(this.workDir, 'docker-'));
    await writeFile(path.join(dir, 'id.txt'), `docker push ${tag} ${randomUUID()}\n`);
    await tarDirectory(dir, `${dir}.tar`);
    const reference = `${this.host}/${repository}:${tag}`;
    await this.daemon.docker(['import', `${dir}.tar`, reference]);
    const pushed = await this.daemon
      .docker(['push', reference], { allowFailure: true, timeoutMs: PUSH_TIMEOUT_MS })
      .catch((error: Error) => ({
        code: -1,
        stdout: '',
        stderr: error.message,
      }));
    const digest = /: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(pushed.stdout)?.[1];
    return { acknowledged: pushed.code === 0 && digest !== undefined, digest, output: pushed.stdout + pushed.stderr };
  }

  private async pushWithSkopeo(repository: string, tag: string): Promise<Pick<PushAttempt, 'acknowledged' | 'digest' | 'output'>> {
    const dir = await mkdtemp(path.join(this.workDir, 'skopeo-'));
    const image = await buildTestImage(dir, { format: 'oci', layers: [{ 'id.txt': `skopeo push ${tag} ${randomUUID()}\n` }] });
    const layout = path.join(dir, 'layout');
    await writeOciLayout(layout, 'v1', image.manifest, [image.config, ...image.layers]);
    const copied = await run(
      'skopeo',
      ['--insecure-policy', 'copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${this.host}/${repository}:${tag}`],
      { allowFailure: true, timeoutMs: PUSH_TIMEOUT_MS },
    ).catch((error: Error) => ({ code: -1, stdout: '', stderr: error.message }));
    return { acknowledged: copied.code === 0, digest: image.manifest.digest, output: copied.stdout + copied.stderr };
  }
}

/**
 * Pulls what a push stored and checks every digest: the tag's manifest hashes to the pushed digest, and the
 * config and every layer it names hash to theirs. Undefined when all is there, else what is wrong.
 */
export async function pullProblem(baseUrl: string, push: PushAttempt): Promise<string | undefined> {
  const response = await request(baseUrl, `/v2/${push.repository}/manifests/${push.tag}`, { headers: { Accept: MANIFEST_TYPES } });
  if (response.status !== 200) return `${push.client} ${push.tag}: manifest ${response.status} ${await response.text()}`;
  const bytes = Buffer.from(await response.arrayBuffer());
  if (sha256(bytes) !== push.digest) return `${push.client} ${push.tag}: manifest ${sha256(bytes)} is not the pushed ${push.digest}`;
  const manifest = JSON.parse(bytes.toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  for (const { digest } of [manifest.config, ...manifest.layers]) {
    const blob = await request(baseUrl, `/v2/${push.repository}/blobs/${digest}`);
    if (blob.status !== 200) return `${push.client} ${push.tag}: blob ${digest} ${blob.status}`;
    const pulled = sha256(Buffer.from(await blob.arrayBuffer()));
    if (pulled !== digest) return `${push.client} ${push.tag}: blob ${digest} pulled as ${pulled}`;
  }
  return undefined;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
