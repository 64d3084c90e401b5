import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { InvalidReferenceError } from '../../oci/reference.js';
import { readBoundedBody } from '../../platform/body.js';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { AgentErrors, invalidRequest } from '../errors.js';

/** The daemon API's plumbing: routes by method and path pattern, JSON in and out, errors as CodedErrors. */

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

export async function dispatch(
  routes: readonly Route[],
  request: IncomingMessage,
  response: ServerResponse,
  logger: Logger,
): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://agent');
  for (const candidate of routes) {
    const match = candidate.method === request.method ? candidate.pattern.exec(url.pathname) : null;
    if (!match) continue;
    try {
      await candidate.handle({ request, response, url, params: { ...match.groups } });
    } catch (error) {
      const answer = asCodedError(error);
      if (answer.status >= 500) logger.error({ err: error }, 'request failed');
      if (response.headersSent) response.end();
      else sendJson(response, answer.status, answer.toJSON());
    }
    return;
  }
  const unknown = new CodedError(AgentErrors.ROUTE_UNKNOWN, `no route ${request.method} ${url.pathname}`);
  sendJson(response, unknown.status, unknown.toJSON());
}

/** Every failure as a CodedError: the one shape the daemon answers with (status, `{"errors":[{code, message}]}`). */
export function asCodedError(error: unknown): CodedError {
  if (error instanceof CodedError) return error;
  // oci/ is shared with the registry, which answers a bad reference with its own codes.
  if (error instanceof InvalidReferenceError) return new CodedError(AgentErrors.REFERENCE_INVALID, error.message);
  return new CodedError(AgentErrors.INTERNAL, (error as Error).message, { cause: error });
}

/** The request's JSON body, checked against the API's schema for it. */
export async function readRequest<T extends z.ZodType>(request: IncomingMessage, schema: T): Promise<z.output<T>> {
  const text = (await readBoundedBody(request, { limit: MAX_REQUEST_BYTES })).toString('utf8');
  return parseJsonRequest(text || '{}', schema, 'request body');
}

/** `text` (`what` names it in the errors) as JSON checked against `schema`; REQUEST_INVALID when it is not JSON or does not fit. */
export function parseJsonRequest<T extends z.ZodType>(text: string, schema: T, what: string): z.output<T> {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new CodedError(AgentErrors.REQUEST_INVALID, `${what} is not JSON`);
  }
  const checked = schema.safeParse(document);
  if (!checked.success) throw invalidRequest(checked.error);
  return checked.data;
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
