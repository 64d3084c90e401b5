import type { Socket } from 'node:net';
import type { Context, Next } from 'koa';
import { afterResponse } from '../http/request-end.js';
import type { RegistryMetrics } from './metrics.js';

/** Socket byte counters when the socket's previous request ended: the next request's bytes start there. */
const countedUpTo = new WeakMap<Socket, { read: number; written: number }>();

/**
 * Counts and times every request when its response has been sent or abandoned. Bytes are the socket's
 * counters since its previous request ended (headers included), so chunked uploads without a Content-Length
 * and streamed blobs count too; a keep-alive connection carries one request at a time, so that span is this
 * request's. (The counters at the start of this request would miss a body that arrived with the headers.)
 */
export function httpMetrics(metrics: RegistryMetrics) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const socket = ctx.req.socket;
    const stopTimer = metrics.httpDuration.startTimer();
    await afterResponse(ctx, next, () => {
      const labels = { method: ctx.method, route: routeLabel(ctx), status: String(ctx.status) };
      stopTimer(labels);
      metrics.httpRequests.inc(labels);
      const previous = countedUpTo.get(socket) ?? { read: 0, written: 0 };
      const now = { read: socket.bytesRead, written: socket.bytesWritten };
      countedUpTo.set(socket, now);
      metrics.bytesReceived.inc({ route: labels.route }, Math.max(now.read - previous.read, 0));
      metrics.bytesSent.inc({ route: labels.route }, Math.max(now.written - previous.written, 0));
    });
  };
}

// Route templates, never raw paths: repository names and digests would make the label set unbounded.
function routeLabel(ctx: Context): string {
  return typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : 'unmatched';
}
