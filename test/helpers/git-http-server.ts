import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from './exec.js';

const HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';
const AUTHOR = {
  GIT_AUTHOR_NAME: 'Berth Test',
  GIT_AUTHOR_EMAIL: 'test@berth.invalid',
  GIT_COMMITTER_NAME: 'Berth Test',
  GIT_COMMITTER_EMAIL: 'test@berth.invalid',
};

/**
 * Git's own smart HTTP server (`git http-backend` run as a CGI by a few lines of Node) on 127.0.0.1 (or the
 * address given, e.g. a test bridge's that network namespaces reach), over
 * bare repositories in a temp directory, with a working clone per repository to commit and push from.
 * With `token` set, every request must carry it as basic auth (any user name), as a forge's HTTPS token.
 */
export class GitHttpServer {
  readonly requests: string[] = [];

  private constructor(
    private readonly root: string,
    private readonly server: Server,
    private readonly token: string | undefined,
    private readonly host: string,
  ) {}

  static async start(options: { token?: string; host?: string } = {}): Promise<GitHttpServer> {
    const root = await mkdtemp(path.join(tmpdir(), 'berth-git-'));
    const server = createServer();
    const host = options.host ?? '127.0.0.1';
    const git = new GitHttpServer(root, server, options.token, host);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => git.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    return git;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The clone URL of a repository. */
  url(name: string): string {
    return `http://${this.host}:${this.port}/${name}.git`;
  }

  /** A new bare repository `<name>.git` served here, and a working clone of it to commit in. */
  async createRepository(name: string): Promise<GitWorkTree> {
    const bare = path.join(this.root, `${name}.git`);
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
    const work = path.join(this.root, `${name}-work`);
    await run('git', ['init', '--quiet', '--initial-branch=main', work]);
    await run('git', ['-C', work, 'remote', 'add', 'origin', bare]);
    return new GitWorkTree(work);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.root, { recursive: true, force: true });
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    this.requests.push(`${request.method} ${url.pathname}`);
    if (this.token && !this.authorized(request.headers.authorization)) {
      response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const child = spawn(HTTP_BACKEND, [], {
      env: {
        GIT_PROJECT_ROOT: this.root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: request.method ?? 'GET',
        CONTENT_TYPE: request.headers['content-type'] ?? '',
        GIT_PROTOCOL: String(request.headers['git-protocol'] ?? ''),
        HTTP_CONTENT_ENCODING: String(request.headers['content-encoding'] ?? ''),
        REMOTE_ADDR: '127.0.0.1',
        PATH: process.env.PATH ?? '/usr/bin:/bin',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    request.pipe(child.stdin);
    relayCgi(child.stdout, response);
  }

  private authorized(header: string | undefined): boolean {
    if (!header?.startsWith('Basic ')) return false;
    const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1) === this.token;
  }
}

/** A CGI answer: headers (with `Status:`) up to a blank line, then the body, streamed. */
function relayCgi(output: NodeJS.ReadableStream, response: ServerResponse): void {
  let head = Buffer.alloc(0);
  let headersDone = false;
  output.on('data', (chunk: Buffer) => {
    if (headersDone) {
      response.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
      else response.setHeader(name, value);
    }
    response.statusCode = status;
    response.write(head.subarray(end + 4));
  });
  output.on('end', () => response.end());
}

/** A working clone: write files, commit (with a fixed time), push branches and tags to the served repository. */
export class GitWorkTree {
  constructor(readonly dir: string) {}

  async write(files: Record<string, string>): Promise<void> {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(this.dir, name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, content);
    }
  }

  /** Commits everything; returns the commit id. `time` (seconds) becomes the commit's date. */
  async commit(message: string, time: number): Promise<string> {
    const env = { ...AUTHOR, GIT_AUTHOR_DATE: `@${time} +0000`, GIT_COMMITTER_DATE: `@${time} +0000` };
    await run('git', ['-C', this.dir, 'add', '-A']);
    await run('git', ['-C', this.dir, 'commit', '--quiet', '--allow-empty', '-m', message], { env });
    return (await run('git', ['-C', this.dir, 'rev-parse', 'HEAD'])).stdout.trim();
  }

  async push(ref: string): Promise<void> {
    await run('git', ['-C', this.dir, 'push', '--quiet', '--force', 'origin', ref]);
  }

  /** An annotated tag of HEAD; returns the tag object's id (not the commit's). */
  async tag(name: string): Promise<string> {
    await run('git', ['-C', this.dir, 'tag', '-a', '-m', `release ${name}`, name], { env: AUTHOR });
    return (await run('git', ['-C', this.dir, 'rev-parse', name])).stdout.trim();
  }
}
