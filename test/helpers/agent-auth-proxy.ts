import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

export interface TokenRequest {
  authorization: string | undefined;
  service: string | null;
  scope: string | null;
}

/**
 * A registry front that demands auth the way Docker Hub does, for a Berth registry behind it (which has
 * no auth yet): `bearer` answers 401 with a Bearer challenge and issues tokens at /token (to anyone, or
 * only for the given credentials); `basic` wants the credentials on every request.
 */
export class AuthProxy {
  readonly tokenRequests: TokenRequest[] = [];
  private readonly token = `token-${Math.random().toString(36).slice(2)}`;

  private constructor(
    private readonly server: Server,
    private readonly upstream: string,
    private readonly mode: 'bearer' | 'basic',
    private readonly credentials: { username: string; password: string } | undefined,
  ) {}

  static async start(upstream: string, mode: 'bearer' | 'basic', credentials?: { username: string; password: string }): Promise<AuthProxy> {
    const server = createServer();
    const proxy = new AuthProxy(server, upstream, mode, credentials);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => void proxy.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private get basic(): string | undefined {
    return this.credentials && `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', `http://${this.host}`);
    if (url.pathname === '/token') return this.issueToken(request, response, url);
    const expected = this.mode === 'bearer' ? `Bearer ${this.token}` : this.basic;
    if (request.headers.authorization !== expected) {
      const repository = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(url.pathname)?.[1] ?? '';
      const challenge =
        this.mode === 'bearer'
          ? `Bearer realm="http://${this.host}/token",service="berth-test",scope="repository:${repository}:pull"`
          : 'Basic realm="berth-test"';
      response.writeHead(401, { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json' });
      response.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const upstream = await fetch(`${this.upstream}${url.pathname}${url.search}`, {
      headers: Object.fromEntries(
        ['accept', 'range'].flatMap((name) => (request.headers[name] ? [[name, String(request.headers[name])]] : [])),
      ),
      // A registry's redirect (to a presigned S3 URL) is for its client to follow.
      redirect: 'manual',
    });
    response.writeHead(upstream.status, Object.fromEntries(upstream.headers));
    if (upstream.body) Readable.fromWeb(upstream.body as WebReadableStream<Uint8Array>).pipe(response);
    else response.end();
  }

  private issueToken(request: IncomingMessage, response: ServerResponse, url: URL): void {
    this.tokenRequests.push({
      authorization: request.headers.authorization,
      service: url.searchParams.get('service'),
      scope: url.searchParams.get('scope'),
    });
    if (this.credentials && request.headers.authorization !== this.basic) {
      response.writeHead(401).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ token: this.token, expires_in: 300 }));
  }
}
