import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ApiPath } from '../api.js';
import { buildOptionsSchema, MAX_BUILD_OPTIONS_BYTES, type ParsedBuildOptions } from '../build/build-api.js';
import type { BuildEvent } from '../build/build-progress.js';
import { RunFailedError, type BuildRequest, type ImageBuilder } from '../build/builder.js';
import { DockerfileError } from '../build/dockerfile.js';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { parsePlatform } from '../../oci/platform.js';
import { parseReference } from '../../oci/reference.js';
import { AgentErrors } from '../errors.js';
import { applyLayerTar } from '../unpack/layer-applier.js';
import { resolveInRoot } from '../unpack/rooted-path.js';
import { SAVED_CREDENTIALS } from '../registry/registry-access.js';
import { ndjson, parseJsonRequest, route, type Route } from './http-api.js';

export interface BuildRouteServices {
  builder: ImageBuilder;
  /** Where each build's context is unpacked (removed after the build). */
  buildContextRoot: string;
  logger: Logger;
}

export function buildRoutes(services: BuildRouteServices): Route[] {
  return [
    route('POST', ApiPath.build, async ({ request, response }) => {
      const body = new BuildRequestBody(request);
      try {
        await buildFromRequest(services, body, response);
      } finally {
        // Whatever was not read (a refused request's context, a build that failed half-way through it) is read and
        // dropped, so the client finishes sending and reads the answer instead of waiting on a full socket.
        void body.discardRest();
      }
    }),
  ];
}

async function buildFromRequest(services: BuildRouteServices, body: BuildRequestBody, response: ServerResponse): Promise<void> {
  const options = await body.options();
  const checked = checkOptions(options);
  if (options.push && checked.tags.length === 0)
    throw new CodedError(AgentErrors.REQUEST_INVALID, 'a tag is needed when pushing to a registry: give one with -t');
  if (options.contextPath !== undefined && !(await stat(options.contextPath).catch(() => undefined))?.isDirectory())
    throw new CodedError(AgentErrors.REQUEST_INVALID, `the context ${options.contextPath} is not a directory on the agent's host`);
  const unpacked = options.contextPath === undefined;
  const directory = options.contextPath ?? path.join(services.buildContextRoot, randomBytes(8).toString('hex'));
  const send = ndjson(response);
  const log = services.logger.child({ build: path.basename(directory) });
  // A client that goes away (docker build's Ctrl-C) stops the build, its RUN step included.
  const abort = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) abort.abort();
  });
  try {
    if (unpacked) {
      await mkdir(directory, { recursive: true, mode: 0o700 });
      await applyLayerTar(body.context(), directory, { keepSetid: true, preserveOwnership: false, warn: () => undefined });
    }
    const dockerfile = options.dockerfile.content ?? (await readContextDockerfile(directory, options.dockerfile.path));
    const result = await services.builder.build(buildRequest(options, directory, dockerfile, checked, abort.signal), (event: BuildEvent) =>
      send(event),
    );
    log.info({ imageId: result.imageId }, 'built');
    send({ type: 'done', ...result, tags: options.tags } satisfies BuildEvent);
  } catch (error) {
    log.warn({ err: error }, 'build failed');
    send({
      type: 'error',
      message: (error as Error).message,
      exitCode: error instanceof RunFailedError ? error.exitCode : undefined,
    } satisfies BuildEvent);
  } finally {
    response.end();
    if (unpacked) await rm(directory, { recursive: true, force: true });
  }
}

function parseBuildPlatform(text: string | undefined): BuildRequest['platform'] {
  if (text === undefined) return undefined;
  try {
    return parsePlatform(text);
  } catch (error) {
    throw new CodedError(AgentErrors.REQUEST_INVALID, `invalid platform ${text}: ${(error as Error).message}`);
  }
}

type CheckedOptions = Pick<BuildRequest, 'tags' | 'cacheFrom' | 'cacheTo' | 'platform'>;

/** The image and cache names and the platform, checked before the build starts: a bad one is a 400, not a failed build. */
function checkOptions(options: ParsedBuildOptions): CheckedOptions {
  return {
    platform: parseBuildPlatform(options.platform),
    tags: options.tags.map((text) => parseRepositoryTag(text, 'tag')),
    cacheFrom: options.cacheFrom.map((text) => parseRepositoryTag(text, 'cache reference')),
    cacheTo: options.cacheTo === undefined ? undefined : parseRepositoryTag(options.cacheTo, 'cache reference'),
  };
}

function buildRequest(
  options: ParsedBuildOptions,
  contextDir: string,
  dockerfile: string,
  checked: CheckedOptions,
  signal: AbortSignal,
): BuildRequest {
  const epoch = options.buildArgs.SOURCE_DATE_EPOCH;
  return {
    dockerfile,
    dockerfileName: path.posix.basename(options.dockerfile.path) || 'Dockerfile',
    contextDir,
    buildArgs: new Map(Object.entries(options.buildArgs)),
    target: options.target,
    noCache: options.noCache,
    labels: options.labels,
    push: options.push,
    registryAccess: SAVED_CREDENTIALS,
    network: options.network,
    pull: options.pull,
    mediaTypes: options.mediaTypes,
    ...checked,
    secrets: new Map(options.secrets.map((secret) => [secret.id, Buffer.from(secret.value, 'base64')])),
    sourceDateEpoch: epoch !== undefined && /^\d+$/.test(epoch) ? Number(epoch) : undefined,
    signal,
  };
}

/** A repository and tag (`latest` when none is given): what `-t`, `--cache-from` and `--cache-to` name. */
function parseRepositoryTag(text: string, what: string): BuildRequest['tags'][number] {
  const reference = parseReference(text);
  if (reference.digest) throw new CodedError(AgentErrors.REQUEST_INVALID, `invalid ${what} ${text}: it cannot name a digest`);
  return { registry: reference.registry, repository: reference.repository, tag: reference.tag ?? 'latest' };
}

async function readContextDockerfile(contextDir: string, dockerfilePath: string): Promise<string> {
  const file = await resolveInRoot(contextDir, dockerfilePath);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) throw new DockerfileError(undefined, `${dockerfilePath} not found in the build context`, dockerfilePath);
  return text;
}

/** The request's body: the options line (bounded), then the context tar, streamed. */
class BuildRequestBody {
  private readonly chunks: AsyncIterator<Buffer>;
  private rest = Buffer.alloc(0);

  constructor(request: IncomingMessage) {
    this.chunks = request[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async options(): Promise<ParsedBuildOptions> {
    let head = Buffer.alloc(0);
    for (;;) {
      const newline = head.indexOf(0x0a);
      if (newline !== -1) {
        this.rest = head.subarray(newline + 1);
        return parseJsonRequest(head.subarray(0, newline).toString('utf8'), buildOptionsSchema, 'the build options');
      }
      if (head.length > MAX_BUILD_OPTIONS_BYTES) throw new CodedError(AgentErrors.REQUEST_INVALID, 'build options line too long');
      const next = await this.chunks.next();
      if (next.done) throw new CodedError(AgentErrors.REQUEST_INVALID, 'the build request ended before its options line');
      head = Buffer.concat([head, next.value]);
    }
  }

  /** The body after the options line. */
  context(): Readable {
    return Readable.from(this.remainder());
  }

  async discardRest(): Promise<void> {
    try {
      for (let next = await this.chunks.next(); !next.done; next = await this.chunks.next());
    } catch {
      // A client that went away has nothing more to send.
    }
  }

  private async *remainder(): AsyncGenerator<Buffer> {
    if (this.rest.length > 0) yield this.rest;
    for (let next = await this.chunks.next(); !next.done; next = await this.chunks.next()) yield next.value;
  }
}
