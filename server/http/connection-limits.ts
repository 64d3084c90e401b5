import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { rawErrorResponse } from '../../platform/raw-error-response.js';

// How often body rates are checked; a slow body is cut at most this long after its window ends.
const RATE_CHECK_INTERVAL_MS = 1_000;
// A refused connection gets this long to take its answer before it is destroyed.
const REFUSAL_LINGER_MS = 2_000;
// Refused connections waiting for their answer, at most, on top of maxConnections: beyond them Node drops new
// connections at once, without an answer, so a flood of refusals cannot use up the file descriptors either.
const REFUSAL_HEADROOM = 256;

type HttpLimits = Config['http'];

/**
 * Applies the `http` limits to a server: header, idle and keep-alive timeouts, connection caps (total and
 * per client address) and a minimum rate for request bodies. Returns a function that stops the rate checks.
 */
export function applyConnectionLimits(server: Server, limits: HttpLimits): () => void {
  // Large blobs stream for as long as they need: no total time limit, only idleness and the minimum rate.
  server.requestTimeout = 0;
  server.headersTimeout = limits.headersTimeoutSeconds * 1000;
  server.timeout = limits.idleTimeoutSeconds * 1000;
  server.keepAliveTimeout = limits.keepAliveTimeoutSeconds * 1000;
  capConnections(server, limits);
  return watchBodyRates(server, limits.bodyMinRate);
}

/**
 * Answers a connection over a cap at once (503 over the total, 429 over its address's share) instead of
 * letting it hold a file descriptor. The check wraps Node's own connection handler, so a refused socket
 * never gets an HTTP parser.
 */
function capConnections(server: Server, limits: HttpLimits): void {
  server.maxConnections = limits.maxConnections + REFUSAL_HEADROOM;
  const perAddress = new Map<string, number>();
  let total = 0;
  const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const fromAddress = perAddress.get(address) ?? 0;
    if (total >= limits.maxConnections)
      return refuse(socket, new CodedError(DistributionErrors.UNAVAILABLE, 'the registry has too many open connections; retry later'));
    if (fromAddress >= limits.maxConnectionsPerAddress) {
      return refuse(socket, new CodedError(DistributionErrors.TOOMANYREQUESTS, 'too many open connections from this address; retry later'));
    }
    total += 1;
    perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      total -= 1;
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left === 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
    for (const handler of handlers) handler.call(server, socket);
  });
}

function refuse(socket: Socket, error: CodedError): void {
  socket.on('error', () => undefined);
  socket.setTimeout(REFUSAL_LINGER_MS, () => socket.destroy());
  socket.end(rawErrorResponse(error, { 'Docker-Distribution-API-Version': 'registry/2.0', 'Retry-After': '1' }));
}

interface WatchedBody {
  request: IncomingMessage;
  response: ServerResponse;
  windowStart: number;
  bytesAtWindowStart: number;
}

/**
 * Cuts request bodies that arrive slower than `minBytes` per window: such a body would otherwise hold its
 * socket (and the request's resources) for as long as the client likes. Bytes are counted on the socket, so
 * watching adds no listener to the body stream; a window in which the registry itself was not reading (the
 * body's buffer is full) does not count against the client.
 */
function watchBodyRates(server: Server, rate: HttpLimits['bodyMinRate']): () => void {
  const watched = new Set<WatchedBody>();
  const windowMs = rate.windowSeconds * 1000;
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (!hasBody(request)) return;
    const body: WatchedBody = { request, response, windowStart: Date.now(), bytesAtWindowStart: request.socket.bytesRead };
    watched.add(body);
    const forget = () => watched.delete(body);
    request.once('end', forget);
    request.once('close', forget);
    response.once('close', forget);
  });
  const timer = setInterval(() => {
    const now = Date.now();
    for (const body of watched) {
      if (now - body.windowStart < windowMs) continue;
      const delivered = body.request.socket.bytesRead - body.bytesAtWindowStart;
      const waitingForClient = body.request.readableLength === 0;
      if (delivered < rate.minBytes && waitingForClient) {
        watched.delete(body);
        cutSlowBody(body, rate);
        continue;
      }
      body.windowStart = now;
      body.bytesAtWindowStart = body.request.socket.bytesRead;
    }
  }, RATE_CHECK_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

/** Answers 408 when nothing was answered yet, then closes the connection, which fails the body's reader. */
function cutSlowBody({ request, response }: WatchedBody, rate: HttpLimits['bodyMinRate']): void {
  const socket = request.socket;
  if (response.headersSent) {
    socket.destroy();
    return;
  }
  const error = new CodedError(
    DistributionErrors.BODY_TOO_SLOW,
    `request body arrived slower than ${rate.minBytes} bytes per ${rate.windowSeconds} s; closing`,
  );
  const body = JSON.stringify(error.toJSON());
  response.shouldKeepAlive = false;
  response.writeHead(error.status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Docker-Distribution-API-Version': 'registry/2.0',
    Connection: 'close',
  });
  response.end(body, () => socket.destroy());
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
