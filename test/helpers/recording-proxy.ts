import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedExchange {
  method: string;
  /** The path with its query, as the client sent it. */
  url: string;
  /** The Authorization scheme the client sent (`Basic`, `Bearer`), or undefined. */
  authorization: string | undefined;
  /** For /token: the grant (`password`, `refresh_token`, or `basic`/`anonymous` for GET) and the scopes asked for. */
  token?: { grant: string; scopes: string[] };
  status: number;
  challenge: string | undefined;
}

/**
 * A transparent HTTP proxy in front of a registry that records every exchange: what the client asked with
 * which kind of credentials, what it was answered and which challenge it got. The Host header is passed on
 * unchanged, so the registry's token realm names the proxy and the client's token requests are seen too.
 */
export class RecordingProxy {
  readonly exchanges: RecordedExchange[] = [];

  private constructor(
    private readonly server: Server,
    private readonly upstream: URL,
  ) {}

  static async start(upstream: string): Promise<RecordingProxy> {
    const server = createServer();
    const proxy = new RecordingProxy(server, new URL(upstream));
    server.on('request', (request: IncomingMessage, response: ServerResponse) => void proxy.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Forgets what was recorded so far; returns it. */
  take(): RecordedExchange[] {
    return this.exchanges.splice(0);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '/';
    const path = url.split('?')[0];
    const authorization = request.headers.authorization?.split(' ')[0];
    // Token requests are a few hundred bytes: read whole to record the grant; everything else is streamed.
    let body: Buffer | undefined;
    let token: RecordedExchange['token'];
    if (path === '/token') {
      const parts: Buffer[] = [];
      for await (const part of request as AsyncIterable<Buffer>) parts.push(part);
      body = Buffer.concat(parts);
      const query = new URLSearchParams(url.split('?')[1] ?? '');
      if (request.method === 'POST') {
        const form = new URLSearchParams(body.toString('utf8'));
        token = {
          grant: form.get('grant_type') ?? '',
          scopes: form
            .getAll('scope')
            .flatMap((scope) => scope.split(' '))
            .filter(Boolean),
        };
      } else {
        token = { grant: authorization === 'Basic' ? 'basic' : 'anonymous', scopes: query.getAll('scope') };
      }
    }
    const upstream = httpRequest(
      { host: this.upstream.hostname, port: this.upstream.port, method: request.method, path: url, headers: request.headers },
      (answer) => {
        const challenge = answer.headers['www-authenticate'];
        this.exchanges.push({
          method: request.method ?? 'GET',
          url,
          authorization,
          token,
          status: answer.statusCode ?? 0,
          challenge: Array.isArray(challenge) ? challenge.join(', ') : challenge,
        });
        response.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    if (body) upstream.end(body);
    else request.pipe(upstream);
  }
}
