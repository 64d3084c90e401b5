import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ReceivedDelivery {
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A webhook endpoint for tests: records every POST it accepts; can go down and come back on its port, or stay
 * up and refuse deliveries with an error status.
 */
export class WebhookReceiver {
  /** The POSTs answered 2xx: the deliveries the registry counts as done. */
  readonly deliveries: ReceivedDelivery[] = [];
  /** The POSTs answered with an error status. */
  readonly refused: ReceivedDelivery[] = [];
  /** The status every POST gets; set it to a 4xx or 5xx to make deliveries fail. */
  status = 200;
  private server: Server | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const received = { headers: request.headers, body: Buffer.concat(chunks).toString('utf8') };
        (this.status < 300 ? this.deliveries : this.refused).push(received);
        response.writeHead(this.status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The events received so far, unwrapped from their envelopes. */
  events(): Array<{ id: string; action: string; target: Record<string, unknown> }> {
    return this.deliveries.flatMap(
      (delivery) =>
        (JSON.parse(delivery.body) as { events: Array<{ id: string; action: string; target: Record<string, unknown> }> }).events,
    );
  }

  async waitFor(predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(`webhook receiver: condition not met within ${timeoutMs} ms; got ${this.deliveries.length} deliveries`);
      await sleep(50);
    }
  }
}
