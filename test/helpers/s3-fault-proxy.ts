import { createServer, request as forward, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'slowdown' | 'reset' | 'stall';

export interface FaultRule {
  fault: Fault;
  /** Which requests the rule applies to; all by default. */
  matches?: (request: IncomingMessage) => boolean;
  /** Out of the matching requests, fault one in `every` (1: all of them). */
  every?: number;
  /** Stop after this many faults (default: never). */
  limit?: number;
  /** How long a stalled request is held before it is forwarded. */
  stallMs?: number;
}

const SLOW_DOWN_XML =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

/**
 * An HTTP proxy in front of an S3 server that injects faults as a flaky S3 would: 503 SlowDown answers,
 * connections reset before any answer, or requests held for a while before they go through. The Host
 * header is forwarded as received, so SigV4 signatures made for the proxy's address still verify.
 */
export class S3FaultProxy {
  private rule: FaultRule | undefined;
  private matched = 0;
  /** Faults injected since the rule was set. */
  injected = 0;
  /** The Range header of every GET that reached the proxy ('' for none), oldest first. */
  readonly getRanges: string[] = [];
  /** The URL and Authorization header of every GET that reached the proxy, oldest first. */
  readonly gets: Array<{ url: string; authorization: string | undefined }> = [];

  private constructor(
    private readonly server: Server,
    private readonly upstreamPort: number,
  ) {}

  static async start(upstreamPort: number): Promise<S3FaultProxy> {
    const server = createServer();
    const proxy = new S3FaultProxy(server, upstreamPort);
    server.on('request', (request, response) => proxy.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Applies `rule` to the requests from now on (undefined: let everything through). */
  inject(rule: FaultRule | undefined): void {
    this.rule = rule;
    this.matched = 0;
    this.injected = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    if (request.method === 'GET') {
      this.getRanges.push(request.headers.range ?? '');
      this.gets.push({ url: request.url ?? '', authorization: request.headers.authorization });
    }
    const fault = this.faultFor(request);
    if (fault === 'reset') {
      request.socket.destroy();
    } else if (fault === 'slowdown') {
      request.resume();
      response.writeHead(503, { 'Content-Type': 'application/xml' }).end(SLOW_DOWN_XML);
    } else if (fault === 'stall') {
      const timer = setTimeout(() => this.pass(request, response), this.rule?.stallMs ?? 5_000);
      request.socket.once('close', () => clearTimeout(timer));
    } else {
      this.pass(request, response);
    }
  }

  private faultFor(request: IncomingMessage): Fault | undefined {
    const rule = this.rule;
    if (!rule || !(rule.matches?.(request) ?? true)) return undefined;
    if (rule.limit !== undefined && this.injected >= rule.limit) return undefined;
    this.matched += 1;
    if (this.matched % (rule.every ?? 1) !== 0) return undefined;
    this.injected += 1;
    return rule.fault;
  }

  private pass(request: IncomingMessage, response: ServerResponse): void {
    const upstream = forward(
      { host: '127.0.0.1', port: this.upstreamPort, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => request.socket.destroy());
    request.pipe(upstream);
  }
}

/** UploadPartCopy requests: a PUT of a part whose bytes come from another object. */
export function isUploadPartCopy(request: IncomingMessage): boolean {
  return request.method === 'PUT' && request.url?.includes('uploadId=') === true && request.headers['x-amz-copy-source'] !== undefined;
}

/** PutObject requests (segments and small blobs). */
export function isPutObject(request: IncomingMessage): boolean {
  return request.method === 'PUT' && request.url?.includes('uploadId=') === false && request.headers['x-amz-copy-source'] === undefined;
}
