import { request, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { createInterface } from 'node:readline';
import type { Duplex, Readable } from 'node:stream';
import type { TerminalSize } from '../container/attach/terminal-frames.js';
import { ApiPath } from '../api-paths.js';
import type {
  ApiError,
  ContainerSummary,
  CreateRequest,
  ExecEvent,
  ExecRequest,
  ImageSummary,
  InspectResult,
  LogLine,
  LoginRequest,
  PruneResult,
  PullEvent,
  PullRequest,
  RemoveResult,
  RunExit,
  StartFailedDetail,
  VolumeSummary,
} from '../api.js';

export class AgentUnavailableError extends Error {}

/**
 * The daemon refused a request: `code` (runtime-agent/errors.ts) says why, for the CLI to decide on;
 * `exitCode` is docker's for a container that could not start.
 */
export class AgentRequestError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    readonly exitCode: number | undefined,
  ) {
    super(message);
  }
}

export interface LogOptions {
  follow?: boolean;
  tail?: string;
  /** Only lines from this time on. */
  since?: Date;
}

/** The CLI's side of the daemon API: HTTP over the daemon's unix socket. */
export class AgentClient {
  constructor(private readonly socketPath: string) {}

  images(): Promise<ImageSummary[]> {
    return this.json('GET', ApiPath.images);
  }

  remove(reference: string): Promise<RemoveResult> {
    return this.json('DELETE', `${ApiPath.images}?reference=${encodeURIComponent(reference)}`);
  }

  prune(): Promise<PruneResult> {
    return this.json('POST', ApiPath.prune);
  }

  /** Streams the pull's events to `onEvent`; resolves with the last one (`done` or `error`). */
  pull(body: PullRequest, onEvent: (event: PullEvent) => void): Promise<PullEvent | undefined> {
    return this.stream('POST', ApiPath.pull, body, onEvent, 'the pull');
  }

  login(body: LoginRequest): Promise<{ status: string }> {
    return this.json('POST', ApiPath.auth, body);
  }

  logout(registry: string): Promise<{ removed: boolean }> {
    return this.json('DELETE', `${ApiPath.auth}?registry=${encodeURIComponent(registry)}`);
  }

  volumes(): Promise<VolumeSummary[]> {
    return this.json('GET', ApiPath.volumes);
  }

  createVolume(name: string): Promise<VolumeSummary> {
    return this.json('POST', ApiPath.volumes, { name });
  }

  removeVolume(name: string): Promise<void> {
    return this.json('DELETE', `${ApiPath.volumes}/${encodeURIComponent(name)}`);
  }

  pruneVolumes(): Promise<{ deleted: string[] }> {
    return this.json('POST', `${ApiPath.volumes}/prune`);
  }

  containers(all: boolean): Promise<ContainerSummary[]> {
    return this.json('GET', `${ApiPath.containers}?all=${all}`);
  }

  create(body: CreateRequest): Promise<{ id: string; name: string }> {
    return this.json('POST', ApiPath.containers, body);
  }

  inspect(container: string): Promise<InspectResult> {
    return this.json('GET', containerPath(container));
  }

  /** `start`, `stop`, `kill`, `wait`: an action on one container, with its query parameters. */
  act<T = ContainerSummary>(container: string, action: 'start' | 'stop' | 'kill' | 'wait', query: Record<string, string> = {}): Promise<T> {
    return this.json('POST', `${containerPath(container)}/${action}?${new URLSearchParams(query)}`);
  }

  /**
   * Starts the container and streams its output back in the same answer (docker attaches before it starts),
   * ending with its exit code; `onStarted` runs once the daemon has answered that it runs.
   */
  async *startWithOutput(container: string, onStarted: () => void): AsyncGenerator<LogLine | RunExit> {
    const response = await this.send('POST', `${containerPath(container)}/start?attach=true`);
    if (response.statusCode !== 200) throw await requestError(response);
    onStarted();
    for await (const line of this.answerLines(response, 'the run')) yield JSON.parse(line) as LogLine | RunExit;
  }

  removeContainer(container: string, force: boolean): Promise<ContainerSummary> {
    return this.json('DELETE', `${containerPath(container)}?force=${force}`);
  }

  logs(container: string, options: LogOptions): AsyncGenerator<LogLine> {
    const query = new URLSearchParams({ follow: String(options.follow ?? false), tail: options.tail ?? 'all' });
    if (options.since) query.set('since', options.since.toISOString());
    return this.ndjson('GET', `${containerPath(container)}/logs?${query}`, undefined, 'the logs');
  }

  /** Streams `input` into a `-i` container's stdin until `input` ends (then the process reads EOF) or `stop`. */
  attachStdin(container: string, input: Readable): { done: Promise<void>; stop(): void } {
    const outgoing = this.daemonRequest('POST', `${containerPath(container)}/stdin`, { 'Content-Type': 'application/octet-stream' });
    let stopped = false;
    const done = new Promise<void>((resolve, reject) => {
      outgoing.once('response', (response) => {
        if (response.statusCode === 200) {
          response.resume();
          resolve();
        } else requestError(response).then(reject, reject);
      });
      outgoing.once('error', (error) => (stopped ? resolve() : reject(error)));
    });
    input.pipe(outgoing);
    return {
      done,
      stop: () => {
        stopped = true;
        input.unpipe(outgoing);
        input.pause();
        outgoing.destroy();
      },
    };
  }

  /** `GET /v1/events`: each line of the stream as sent (parseEventLine reads it), until the daemon ends it. */
  events(query: URLSearchParams): AsyncGenerator<string> {
    return this.lines('GET', `${ApiPath.events}?${query}`, undefined, 'the events');
  }

  /**
   * A connection to a `-t` container's terminal (terminal-frames.ts both ways); with `start`, the daemon
   * starts the container first and attaches at once, so not even a quick command's output or exit is missed.
   */
  attachTerminal(container: string, options: { start: boolean }): Promise<Duplex> {
    return this.upgrade(`${containerPath(container)}/attach?start=${options.start}`);
  }

  /** `exec -i` without `-t`: a new process whose stdin, stdout and stderr travel as frames; the last is its exit code. */
  execWithStdin(container: string, body: ExecRequest): Promise<Duplex> {
    return this.upgrade(`${containerPath(container)}/exec?${new URLSearchParams({ request: JSON.stringify(body), tty: 'false' })}`);
  }

  /** `exec -t`: a new process on a terminal of its own; the connection's last frame is its exit code. */
  execOnTerminal(container: string, body: ExecRequest, options: { interactive: boolean; size: TerminalSize }): Promise<Duplex> {
    const query = new URLSearchParams({
      request: JSON.stringify(body),
      interactive: String(options.interactive),
      columns: String(options.size.columns),
      rows: String(options.size.rows),
    });
    return this.upgrade(`${containerPath(container)}/exec?${query}`);
  }

  /** Takes a connection over from HTTP (docker's hijack): `101` and then the raw stream, or the daemon's error. */
  private upgrade(path: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const outgoing = this.daemonRequest('POST', path, { Connection: 'Upgrade', Upgrade: 'tcp' });
      outgoing.once('upgrade', (_response, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      outgoing.once('response', (response) => requestError(response).then(reject, reject));
      outgoing.once('error', (error) => reject(this.connectionError(error)));
      outgoing.end();
    });
  }

  /** `POST /v1/build`: the options line, then the context tar streamed; the build's events go to `onEvent`. */
  async build<T>(options: unknown, context: Readable, onEvent: (event: T) => void): Promise<T | undefined> {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = this.daemonRequest('POST', ApiPath.build, { 'Content-Type': 'application/octet-stream' }, (answer) => {
        // Refused (a bad option): the rest of the context is not wanted, and an unfinished body would keep this process alive.
        if (answer.statusCode !== 200) {
          context.unpipe(outgoing);
          context.destroy();
          outgoing.end();
        }
        resolve(answer);
      });
      outgoing.once('error', reject);
      outgoing.write(`${JSON.stringify(options)}\n`);
      context.once('error', (error) => outgoing.destroy(error));
      context.pipe(outgoing);
    });
    if (response.statusCode !== 200) throw await requestError(response);
    let last: T | undefined;
    for await (const line of createInterface({ input: response, crlfDelay: Infinity })) {
      if (line.trim() === '') continue;
      last = JSON.parse(line) as T;
      onEvent(last);
    }
    return last;
  }

  exec(container: string, body: ExecRequest, onEvent: (event: ExecEvent) => void): Promise<ExecEvent | undefined> {
    return this.stream('POST', `${containerPath(container)}/exec`, body, onEvent, 'the exec');
  }

  /** A JSON request to any API path (the everyday verbs, client/verbs-client.ts). */
  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.json(method, path, body);
  }

  /** A request whose answer is NDJSON, one item at a time. */
  items<T>(method: string, path: string, body: unknown, during: string): AsyncGenerator<T> {
    return this.ndjson(method, path, body, during);
  }

  /** A request with a streamed body and/or answer (cp, save, load): the answer, once the daemon accepted it. */
  async raw(method: string, path: string, body: Readable | string | undefined, contentType: string): Promise<IncomingMessage> {
    const response = await this.sendBody(method, path, body, contentType);
    if (response.statusCode !== 200) throw await requestError(response);
    return response;
  }

  /** Sends one request whose answer is NDJSON, handing each line to `onItem`; resolves with the last. */
  private async stream<T>(method: string, path: string, body: unknown, onItem: (item: T) => void, during: string): Promise<T | undefined> {
    let last: T | undefined;
    for await (const item of this.ndjson<T>(method, path, body, during)) {
      last = item;
      onItem(item);
    }
    return last;
  }

  private async *ndjson<T>(method: string, path: string, body: unknown, during: string): AsyncGenerator<T> {
    for await (const line of this.lines(method, path, body, during)) yield JSON.parse(line) as T;
  }

  /** The answer's non-empty lines; `during` names the operation for the error when the daemon goes away mid-stream (node only says `aborted`). */
  private async *lines(method: string, path: string, body: unknown, during: string): AsyncGenerator<string> {
    const response = await this.send(method, path, body);
    if (response.statusCode !== 200) throw await requestError(response);
    yield* this.answerLines(response, during);
  }

  private async *answerLines(response: IncomingMessage, during: string): AsyncGenerator<string> {
    const lines = createInterface({ input: response, crlfDelay: Infinity })[Symbol.asyncIterator]();
    for (;;) {
      const next = await lines.next().catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ECONNRESET') throw error;
        throw new AgentUnavailableError(
          `lost the connection to the berth-agent daemon at unix://${this.socketPath} during ${during} (did the daemon exit?)`,
        );
      });
      if (next.done) return;
      if (next.value.trim() !== '') yield next.value;
    }
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    if (response.statusCode !== 200 && response.statusCode !== 201) throw await requestError(response);
    return JSON.parse(await readText(response)) as T;
  }

  private send(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
    return this.sendBody(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json');
  }

  /** A request to the daemon's API socket, through Node's keep-alive agent. */
  private daemonRequest(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    onResponse?: (response: IncomingMessage) => void,
  ): ClientRequest {
    // An empty server name, as a unix socket has none: otherwise the agent works one out for each new socket, and
    // Node's first isIP compiles its IPv6 pattern, 15-75 ms of every CLI command.
    const options = { socketPath: this.socketPath, method, path, headers, servername: '' };
    return request(options, onResponse);
  }

  private sendBody(method: string, path: string, body: Readable | string | undefined, contentType: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const outgoing = this.daemonRequest(method, path, { 'Content-Type': contentType }, resolve);
      outgoing.once('error', (error) => reject(this.connectionError(error)));
      if (body === undefined || typeof body === 'string') outgoing.end(body);
      else body.pipe(outgoing);
    });
  }

  private connectionError(error: NodeJS.ErrnoException): Error {
    const unavailable = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
    return unavailable
      ? new AgentUnavailableError(`Cannot connect to the berth-agent daemon at unix://${this.socketPath}. Is the daemon running?`)
      : error;
  }
}

async function readText(response: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of response) text += String(chunk);
  return text;
}

async function requestError(response: IncomingMessage): Promise<AgentRequestError> {
  const text = await readText(response);
  const error = parseApiError(text);
  if (!error) return new AgentRequestError(`daemon answered ${response.statusCode}: ${text}`, response.statusCode, undefined, undefined);
  const exitCode = (error.detail as Partial<StartFailedDetail> | undefined)?.exitCode;
  return new AgentRequestError(error.message, response.statusCode, error.code, typeof exitCode === 'number' ? exitCode : undefined);
}

function parseApiError(text: string): ApiError['errors'][number] | undefined {
  try {
    return (JSON.parse(text) as ApiError).errors[0];
  } catch {
    return undefined;
  }
}

function containerPath(container: string): string {
  return `${ApiPath.containers}/${encodeURIComponent(container)}`;
}
