import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';

/** Every request a test makes gives up after this long, so a hanging server fails a test instead of stalling it. */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/** fetch's options, with a body that may be a Buffer. */
export type RequestOptions = Omit<RequestInit, 'body'> & { body?: Uint8Array | string };

/** fetch against the registry, with a timeout. `path` starts with `/v2/` and may carry a query. */
export function request(baseUrl: string, path: string, init: RequestOptions = {}): Promise<Response> {
  return fetchUrl(new URL(path, baseUrl), init);
}

/** fetch of a full URL (an upload Location), with a timeout. */
export function fetchUrl(url: URL, init: RequestOptions = {}): Promise<Response> {
  const { body, ...rest } = init;
  return fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...rest, body: body as BodyInit | undefined });
}

/** Resolves a Location header (relative or absolute) against the registry's URL. */
export function resolveLocation(baseUrl: string, location: string | null): URL {
  if (!location) throw new Error('response has no Location header');
  return new URL(location, baseUrl);
}

export async function readBytes(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

/**
 * Asserts the spec's error response: the status, a JSON body `{"errors":[...]}` whose first entry has `code`,
 * and the API version header that every /v2/ response carries. Returns the first error entry.
 */
export async function assertRegistryError(
  t: ExecutionContext,
  response: Response | RawResponse,
  status: number,
  code: string,
): Promise<RegistryErrorEntry> {
  const headers = response instanceof Response ? (name: string) => response.headers.get(name) : (name: string) => response.header(name);
  const text = response instanceof Response ? await response.text() : response.body.toString('utf8');
  t.is(response.status, status, `expected ${status} ${code}, got ${response.status}: ${text}`);
  t.is(headers('docker-distribution-api-version'), 'registry/2.0');
  t.regex(headers('content-type') ?? '', /^application\/json/);
  let body: { errors?: RegistryErrorEntry[] };
  try {
    body = JSON.parse(text) as { errors?: RegistryErrorEntry[] };
  } catch {
    t.fail(`error body is not JSON: ${text}`);
    return { code: '' };
  }
  t.true(Array.isArray(body.errors) && body.errors.length > 0, `no errors array in ${text}`);
  const first = body.errors?.[0] ?? { code: '' };
  t.is(first.code, code, `error body: ${text}`);
  if (first.message !== undefined) t.is(typeof first.message, 'string');
  return first;
}

export interface RawResponse {
  status: number;
  /** Header names lowercased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  header(name: string): string | null;
}

export interface RawRequest {
  method: string;
  /** Sent verbatim: no normalisation of `//`, `..` or case. */
  path: string;
  /** Header lines sent verbatim and in order, e.g. `Content-Length: 5` (malformed lines welcome). */
  headers?: string[];
  body?: Buffer | string;
}

/**
 * One HTTP/1.1 request over a plain TCP socket, for what fetch cannot send: paths with `//` or `..`, malformed
 * headers, bodies that disagree with their headers. Adds Host and `Connection: close` and reads the response
 * until the server closes the connection. Rejects if no response arrives (a hang) within the timeout.
 */
export function rawRequest(baseUrl: string, options: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
  const head = [
    `${options.method} ${options.path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    ...(options.headers ?? []),
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const received: Buffer[] = [];
    const socket = connect(Number(port), hostname);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response to ${options.method} ${options.path} within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    socket.on('data', (data: Buffer) => received.push(data));
    // The server may answer early and close while the body is still being written; what it sent still counts.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const data = Buffer.concat(received);
      if (data.length === 0) reject(new Error(`connection closed without a response to ${options.method} ${options.path}`));
      else resolve(parseResponse(data, options.method));
    });
    socket.once('connect', () => {
      socket.write(head);
      if (body && body.length > 0) socket.write(body);
    });
  });
}

/**
 * Sends a request whose body is cut short: declares `Content-Length: declaredLength`, sends `sent`, waits so the
 * server is mid-body, then destroys the socket. Resolves with whatever the server had answered (usually nothing).
 */
export interface TruncatedRequest {
  method: string;
  path: string;
  headers?: string[];
  declaredLength: number;
  sent: Buffer;
  pauseMs?: number;
}

export async function sendTruncatedRequest(baseUrl: string, options: TruncatedRequest): Promise<string> {
  const { hostname, port } = new URL(baseUrl);
  const socket: Socket = connect(Number(port), hostname);
  const received: Buffer[] = [];
  socket.on('data', (data: Buffer) => received.push(data));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const head = [
    `${options.method} ${options.path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    ...(options.headers ?? []),
    `Content-Length: ${options.declaredLength}`,
    '',
    '',
  ].join('\r\n');
  socket.write(head);
  socket.write(options.sent);
  await sleep(options.pauseMs ?? 200);
  socket.destroy();
  await closed;
  return Buffer.concat(received).toString('utf8');
}

/** Retries `attempt` while it answers `retryStatus` (e.g. a 416 while the server still holds a lease from an aborted request). */
export async function retryWhile(retryStatus: number, attempt: () => Promise<Response>, timeoutMs = 5_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await attempt();
    if (response.status !== retryStatus || Date.now() > deadline) return response;
    await response.arrayBuffer();
    await sleep(50);
  }
}

function parseResponse(data: Buffer, method: string): RawResponse {
  const end = data.indexOf('\r\n\r\n');
  const headText = (end === -1 ? data : data.subarray(0, end)).toString('latin1');
  const rest = end === -1 ? Buffer.alloc(0) : data.subarray(end + 4);
  const [statusLine = '', ...lines] = headText.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = rest;
  if (method === 'HEAD' || status === 204 || status === 304) body = Buffer.alloc(0);
  else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = decodeChunked(rest);
  else if (headers['content-length'] !== undefined) body = rest.subarray(0, Number(headers['content-length']));
  return { status, headers, body, header: (name) => headers[name.toLowerCase()] ?? null };
}

function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let position = 0;
  while (position < data.length) {
    const lineEnd = data.indexOf('\r\n', position);
    if (lineEnd === -1) break;
    const size = parseInt(data.subarray(position, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    position = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * The registry's log lines at error level or above (pino level >= 50): a request that failed with a 5xx, or
 * worse. Truncated and malformed requests get no response a test could read; this is how they are checked.
 */
export function serverErrorLines(logs: string): string[] {
  return logs.split('\n').filter((line) => {
    const level = /"level":(\d+)/.exec(line)?.[1];
    return level !== undefined && Number(level) >= 50;
  });
}

/** `parts` encoded as an HTTP/1.1 chunked body (one chunk per part, then the terminating chunk), for rawRequest. */
export function chunkedBody(...parts: Buffer[]): Buffer {
  const encoded = parts
    .filter((part) => part.length > 0)
    .flatMap((part) => [Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]);
  return Buffer.concat([...encoded, Buffer.from('0\r\n\r\n')]);
}
