import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ApiPath, type ImageSummary, type PullEvent, type PullRequest } from '../api.js';
import type { GarbageCollector } from '../image/garbage-collector.js';
import type { ImagePuller } from '../image/image-puller.js';
import { ImageNotFoundError, removeImage } from '../image/image-removal.js';
import type { ImageRecord, ImageStore } from '../image/image-store.js';
import { familiarName, parseReference, ReferenceError } from '../reference.js';
import type { Credentials } from '../registry/registry-auth.js';
import type { RegistryClient } from '../registry/registry-client.js';

export interface ApiServices {
  puller: ImagePuller;
  images: ImageStore;
  collector: GarbageCollector;
  registryClient: (registry: string, credentials: Credentials | undefined) => RegistryClient;
  logger: Logger;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_REQUEST_BYTES = 64 * 1024;

type Handler = (request: IncomingMessage, response: ServerResponse, url: URL) => Promise<void>;

/** The daemon's local HTTP/JSON API. Errors are `{"message": ...}` with a status; a pull streams NDJSON events. */
export function createApiServer(services: ApiServices): Server {
  const routes: Record<string, Handler> = {
    [`GET ${ApiPath.ping}`]: async (_request, response) => sendJson(response, 200, { ok: true }),
    [`GET ${ApiPath.images}`]: async (_request, response) => sendJson(response, 200, (await services.images.list()).map(summarize).sort(newestFirst)),
    [`DELETE ${ApiPath.images}`]: async (_request, response, url) => {
      const reference = url.searchParams.get('reference');
      if (!reference) throw new HttpError(400, 'reference is required');
      sendJson(response, 200, await removeImage(reference, services.images, services.collector));
    },
    [`POST ${ApiPath.prune}`]: async (_request, response) => sendJson(response, 200, await services.collector.collect()),
    [`POST ${ApiPath.pull}`]: (request, response) => pull(services, request, response),
  };
  return createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://agent');
    const handler = routes[`${request.method} ${url.pathname}`];
    if (!handler) return sendJson(response, 404, { message: `no route ${request.method} ${url.pathname}` });
    handler(request, response, url).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : error instanceof ImageNotFoundError ? 404 : 500;
      if (status === 500) services.logger.error({ err: error }, 'request failed');
      if (response.headersSent) response.end();
      else sendJson(response, status, { message: (error as Error).message });
    });
  });
}

async function pull(services: ApiServices, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const body = (await readJson(request)) as Partial<PullRequest>;
  if (typeof body.reference !== 'string') throw new HttpError(400, 'reference is required');
  let reference;
  try {
    reference = parseReference(body.reference);
  } catch (error) {
    if (error instanceof ReferenceError) throw new HttpError(400, error.message);
    throw error;
  }
  const credentials = body.username !== undefined ? { username: body.username, password: body.password ?? '' } : undefined;
  const log = services.logger.child({ reference: body.reference });
  response.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  // The pull goes on if the client goes away: its work is shared with other pulls and is wasted otherwise.
  const send = (event: PullEvent) => {
    if (event.type === 'warning') log.warn(event.message);
    if (!response.destroyed) response.write(`${JSON.stringify(event)}\n`);
  };
  try {
    const record = await services.puller.pull(reference, services.registryClient(reference.registry, credentials), send);
    log.info({ digest: record.digest }, 'pulled');
    send({ type: 'done', image: summarize(record) });
  } catch (error) {
    log.warn({ err: error }, 'pull failed');
    send({ type: 'error', message: (error as Error).message });
  }
  response.end();
}

function summarize(record: ImageRecord): ImageSummary {
  return {
    repository: familiarName(record),
    tag: record.tag,
    digest: record.digest,
    id: record.configDigest,
    created: record.created,
    size: record.size,
  };
}

function newestFirst(a: ImageSummary, b: ImageSummary): number {
  return (b.created ?? '').localeCompare(a.created ?? '');
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of request) {
    text += String(chunk);
    if (text.length > MAX_REQUEST_BYTES) throw new HttpError(413, 'request body too large');
  }
  try {
    return JSON.parse(text || '{}');
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
}

function sendJson(response: ServerResponse, status: number, document: unknown): void {
  const body = JSON.stringify(document);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}
