import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBoundedBody } from '../../platform/body.js';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { ContainerError } from '../container/container-manager.js';
import { RunOptionsError } from '../container/run-options.js';
import { ImageNotFoundError } from '../image/image-lookup.js';
import { ImageInUseError } from '../image/image-removal.js';
import { InvalidReferenceError } from '../../oci/reference.js';
import { StartError } from '../runtime/container-runtime.js';

/** The daemon API's plumbing: routes by method and path pattern, JSON in and out, errors as `{message}`. */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RouteContext {
  request: IncomingMessage;
  response: ServerResponse;
  url: URL;
  /** The path pattern's named groups, e.g. `id`. */
  params: Record<string, string>;
}

export interface Route {
  method: string;
  pattern: RegExp;
  handle(context: RouteContext): Promise<void>;
}

const MAX_REQUEST_BYTES = 64 * 1024;

export function route(method: string, path: string, handle: Route['handle']): Route {
  const pattern = new RegExp(`^${path.replace(/:(\w+)/g, '(?<$1>[^/]+)')}$`);
  return { method, pattern, handle };
}

export async function dispatch(routes: readonly Route[], request: IncomingMessage, response: ServerResponse, logger: Logger): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://agent');
  for (const candidate of routes) {
    const match = candidate.method === request.method ? candidate.pattern.exec(url.pathname) : null;
    if (!match) continue;
    try {
      await candidate.handle({ request, response, url, params: { ...match.groups } });
    } catch (error) {
      const { status, body } = errorAnswer(error);
      if (status === 500) logger.error({ err: error }, 'request failed');
      if (response.headersSent) response.end();
      else sendJson(response, status, body);
    }
    return;
  }
  sendJson(response, 404, { message: `no route ${request.method} ${url.pathname}` });
}

function errorAnswer(error: unknown): { status: number; body: { message: string; exitCode?: number } } {
  const message = (error as Error).message;
  if (error instanceof HttpError || error instanceof ContainerError || error instanceof CodedError) return { status: error.status, body: { message } };
  if (error instanceof ImageNotFoundError) return { status: 404, body: { message } };
  if (error instanceof ImageInUseError) return { status: 409, body: { message } };
  if (error instanceof RunOptionsError || error instanceof InvalidReferenceError) return { status: 400, body: { message } };
  if (error instanceof StartError) return { status: 500, body: { message, exitCode: error.exitCode } };
  return { status: 500, body: { message } };
}

export async function readJson(request: IncomingMessage): Promise<unknown> {
  const text = (await readBoundedBody(request, { limit: MAX_REQUEST_BYTES })).toString('utf8');
  try {
    return JSON.parse(text || '{}');
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
}

export function sendJson(response: ServerResponse, status: number, document: unknown): void {
  const body = JSON.stringify(document);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

/** Starts an NDJSON answer; the returned function writes one event unless the client has gone. */
export function ndjson(response: ServerResponse): (event: unknown) => void {
  response.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  return (event) => {
    if (!response.destroyed) response.write(`${JSON.stringify(event)}\n`);
  };
}
