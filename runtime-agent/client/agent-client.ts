import { request, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { ApiPath, type ApiError, type ImageSummary, type PruneResult, type PullEvent, type PullRequest, type RemoveResult } from '../api.js';

export class AgentUnavailableError extends Error {}

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
  async pull(body: PullRequest, onEvent: (event: PullEvent) => void): Promise<PullEvent | undefined> {
    const response = await this.send('POST', ApiPath.pull, body);
    if (response.statusCode !== 200) throw new Error(await errorMessage(response));
    let last: PullEvent | undefined;
    for await (const line of createInterface({ input: response, crlfDelay: Infinity })) {
      if (line.trim() === '') continue;
      last = JSON.parse(line) as PullEvent;
      onEvent(last);
    }
    return last;
  }

  private async json<T>(method: string, path: string): Promise<T> {
    const response = await this.send(method, path);
    const text = await readText(response);
    if (response.statusCode !== 200) throw new Error(messageOf(text, response.statusCode));
    return JSON.parse(text) as T;
  }

  private send(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const outgoing = request({ socketPath: this.socketPath, method, path, headers: { 'Content-Type': 'application/json' } }, resolve);
      outgoing.once('error', (error: NodeJS.ErrnoException) => {
        const unavailable = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
        reject(unavailable ? new AgentUnavailableError(`Cannot connect to the berth-agent daemon at unix://${this.socketPath}. Is the daemon running?`) : error);
      });
      outgoing.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}

async function readText(response: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of response) text += String(chunk);
  return text;
}

async function errorMessage(response: IncomingMessage): Promise<string> {
  return messageOf(await readText(response), response.statusCode);
}

function messageOf(text: string, status: number | undefined): string {
  try {
    return (JSON.parse(text) as ApiError).message;
  } catch {
    return `daemon answered ${status}: ${text}`;
  }
}
