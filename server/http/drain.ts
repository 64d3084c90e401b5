import type { Server } from 'node:http';
import type { Logger } from '../../platform/logger.js';

const IDLE_SWEEP_MS = 100;

/**
 * Stops accepting connections and waits for the requests in flight, for at most `timeoutMs`: then the
 * connections still open (long-polls, an upload that would outlast the orchestrator's kill) are cut. Clients
 * resume from what the registry acknowledged: an upload from its last acknowledged offset, a long-poll by asking
 * again (of another replica behind the load balancer).
 */
export function drainServer(server: Server, timeoutMs: number, logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const cut = setTimeout(() => {
      server.getConnections((error, open) =>
        logger.warn({ open: error ? undefined : open }, 'drain timeout: closing the connections still open'),
      );
      server.closeAllConnections();
    }, timeoutMs);
    // A request answered during the drain leaves its keep-alive connection idle, and only its client would
    // close it: closing idle connections as they appear lets the stop end with the last answer.
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    server.close(() => {
      clearTimeout(cut);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
