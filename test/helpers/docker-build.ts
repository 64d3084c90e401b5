import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import type { DockerDaemon } from './dockerd.js';
import { run, type RunResult } from './exec.js';
import { openDockerArchive, type ImageSource } from './image-filesystem.js';
import type { PodmanEnvironment } from './podman.js';

/** The builders an image can be made with here, to set against each other (and, later, against Berth's). */
export type ReferenceBuilder = 'legacy' | 'buildkit' | 'buildah';

/** A `docker build` invocation, as flags every builder here understands. */
export interface BuildRequest {
  context: string;
  /** The Dockerfile, relative to the context (its `<name>.dockerignore` then applies). */
  dockerfile: string;
  tag: string;
  target: string | undefined;
  buildArgs: Record<string, string>;
}

export interface BuildOutcome {
  /** Exit code 0 or not: a builder that rejects a Dockerfile is an answer too. */
  succeeded: boolean;
  /** What the builder printed (progress, RUN output, the error). */
  output: string;
  /** Opens the built image for the image-filesystem helper; undefined when the build failed. */
  image: (() => Promise<ImageSource>) | undefined;
}

/** The `docker build` flags for a request, which `buildah bud` and `berth-agent build` take too. */
export function buildFlags(request: BuildRequest): string[] {
  return [
    '--tag',
    request.tag,
    '--file',
    path.join(request.context, request.dockerfile),
    ...(request.target === undefined ? [] : ['--target', request.target]),
    ...Object.entries(request.buildArgs).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]),
    request.context,
  ];
}

/**
 * Builds with dockerd 20.10: its legacy builder (DOCKER_BUILDKIT=0) or its BuildKit (Debian's CLI with
 * DOCKER_BUILDKIT=1, plain progress), then `docker save`s the image into `outDir`.
 */
export async function dockerBuild(
  daemon: DockerDaemon,
  builder: 'legacy' | 'buildkit',
  request: BuildRequest,
  outDir: string,
): Promise<BuildOutcome> {
  // No network: a RUN never reaches outside (and Debian's BuildKit needs it said).
  const flags = ['--network=none', ...buildFlags(request)];
  const options = { allowFailure: true, timeoutMs: 300_000 };
  const result =
    builder === 'legacy'
      ? await daemon.docker(['build', ...flags], options)
      : await daemon.buildKit(flags, { ...options, env: { BUILDKIT_PROGRESS: 'plain' } });
  if (result.code !== 0) return failed(result);
  const archive = path.join(await mkdtemp(path.join(outDir, `${builder}-`)), 'image.tar');
  await daemon.docker(['save', '--output', archive, request.tag]);
  return { succeeded: true, output: printed(result), image: () => openDockerArchive(archive) };
}

/**
 * `buildah bud` with runc and no network, images taken only from its local storage, saved as a docker archive.
 * Docker's image format: the OCI one has no Healthcheck, OnBuild or Shell.
 */
export async function buildahBuild(
  podman: PodmanEnvironment,
  request: BuildRequest,
  outDir: string,
  extraFlags: string[] = [],
): Promise<BuildOutcome> {
  const result = await buildah(podman, ['bud', '--runtime', 'runc', '--pull=never', ...extraFlags, ...buildFlags(request)]);
  if (result.code !== 0) return failed(result);
  // A docker archive keeps docker's config as built; pushing to an OCI layout would convert it and drop fields.
  const archive = path.join(await mkdtemp(path.join(outDir, 'buildah-')), 'image.tar');
  const pushed = await buildah(podman, ['push', '--quiet', request.tag, `docker-archive:${archive}`]);
  if (pushed.code !== 0) throw new Error(`buildah push ${request.tag} failed:\n${printed(pushed)}`);
  return { succeeded: true, output: printed(result), image: async () => withoutIdentityLabel(await openDockerArchive(archive)) };
}

// buildah 1.28 labels every image with its version even with --identity-label=false: a mark of the tool, not
// of the Dockerfile, so it is left out of what is compared.
const BUILDAH_IDENTITY_LABEL = 'io.buildah.version';

function withoutIdentityLabel(image: ImageSource): ImageSource {
  const config = (image.config['config'] ?? {}) as { Labels?: Record<string, string> | null };
  if (config.Labels) delete config.Labels[BUILDAH_IDENTITY_LABEL];
  return image;
}

/** buildah with podman's configuration (storage, runtime, ulimits): the two share containers/storage. */
export function buildah(podman: PodmanEnvironment, args: string[]): Promise<RunResult> {
  return run('buildah', args, { env: podman.env, allowFailure: true, timeoutMs: 300_000 });
}

function printed(result: RunResult): string {
  return `${result.stdout}${result.stderr}`;
}

function failed(result: RunResult): BuildOutcome {
  return { succeeded: false, output: printed(result), image: undefined };
}

/** Runs at most `limit` of the tasks given to it at once (builds share two cores with other test files). */
export function concurrencyLimit(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    // A finishing task hands its slot straight to the next waiter, so a newcomer cannot take it in between.
    if (active < limit) active += 1;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active -= 1;
    }
  };
}
