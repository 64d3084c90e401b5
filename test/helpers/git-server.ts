import { spawn } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

/**
 * Git's smart HTTP protocol on 127.0.0.1: a small CGI host for git-http-backend serving every repository
 * under `projectRoot` (bare repositories named `<name>.git`), as a git forge would.
 */
export class GitHttpServer {
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(projectRoot: string): Promise<GitHttpServer> {
    const server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const cgi = spawn(HTTP_BACKEND, [], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          GIT_PROJECT_ROOT: projectRoot,
          GIT_HTTP_EXPORT_ALL: '1',
          REQUEST_METHOD: request.method ?? 'GET',
          PATH_INFO: decodeURIComponent(url.pathname),
          QUERY_STRING: url.search.slice(1),
          CONTENT_TYPE: request.headers['content-type'] ?? '',
          HTTP_CONTENT_ENCODING: request.headers['content-encoding'] ?? '',
          GIT_PROTOCOL: String(request.headers['git-protocol'] ?? ''),
          REMOTE_ADDR: '127.0.0.1',
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      request.pipe(cgi.stdin);
      relayCgiAnswer(cgi.stdout, response);
      cgi.once('error', (error) => response.destroy(error));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new GitHttpServer(server, (server.address() as AddressInfo).port);
  }

  /** `http://127.0.0.1:<port>/<name>.git` */
  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}.git`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A CGI answer: header lines (`Status: 404 Not Found` among them) up to a blank line, then the body. */
function relayCgiAnswer(output: NodeJS.ReadableStream, response: ServerResponse): void {
  let head = Buffer.alloc(0);
  let headerDone = false;
  output.on('data', (chunk: Buffer) => {
    if (headerDone) {
      response.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n') !== -1 ? head.indexOf('\r\n\r\n') : head.indexOf('\n\n');
    if (end === -1) return;
    const separator = head[end] === 0x0d ? 4 : 2;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else response.setHeader(name, value);
    }
    response.writeHead(status);
    headerDone = true;
    response.write(head.subarray(end + separator));
  });
  output.on('end', () => response.end());
}
