import { Readable } from 'node:stream';
import { z } from 'zod';
import { assignmentsAnswerSchema, type Assignment, type ReplicaReport } from './assignment.js';
import type { MintedPullToken } from './node-pull-access.js';
import type { LogRequest, ReplicaLogLine } from './replica-logs.js';

/** What a node tells the registry about itself when it joins. */
export interface NodeIdentity {
  name: string;
  labels: Record<string, string>;
  address: string;
  capacity: { cpus: number; memoryBytes: number };
}

/** An answer of the node API that says the node must join again (its credential was replaced or it was removed). */
export class NodeRejectedError extends Error {}

/** A request the registry refused as invalid (4xx other than 401), e.g. a report on a replica just taken away. */
export class NodeRequestRefusedError extends Error {}

const logRequestsSchema = z.object({
  requests: z.array(
    z.object({ id: z.string().min(1), replicas: z.array(z.string()), tail: z.number().int().min(0).nullable(), follow: z.boolean() }),
  ),
});
const joinAnswerSchema = z.object({ node: z.string(), credential: z.string().min(1) });
const pullTokenSchema = z.object({ token: z.string().min(1).nullable(), expiresIn: z.number().int().positive().nullable() });
const API = '/deploy/v1';
/** Past the registry's longest long-poll, so that a poll ends by the registry's answer. */
const POLL_SLACK_MS = 10_000;
const CALL_TIMEOUT_MS = 10_000;

/**
 * The agent's side of the registry's node API, over HTTP only: join with the join token, then act as the
 * node with the credential the join returned.
 */
export class RegistryNodeClient {
  private credential: string | undefined;

  constructor(private readonly baseUrl: string) {}

  /** Joins as a new node and returns the credential issued for it. */
  async join(token: string, identity: NodeIdentity): Promise<string> {
    const response = await this.fetch(`${API}/join`, { method: 'POST', body: JSON.stringify({ token, ...identity }) }, CALL_TIMEOUT_MS);
    // The name of a live node: joining again cannot succeed until an operator removes that node.
    if (response.status === 409) throw new NodeRejectedError(`the registry refused the join: ${errorMessage(await response.text())}`);
    const body = await answer(response);
    this.credential = joinAnswerSchema.parse(body).credential;
    return this.credential;
  }

  /** Acts as the node a previous join made, with the credential it returned. */
  resume(credential: string): void {
    this.credential = credential;
  }

  /** The node's assignments once they differ from `version`, or after `waitSeconds` unchanged. */
  async assignments(version: number, waitSeconds: number, stop: AbortSignal): Promise<{ version: number; assignments: Assignment[] }> {
    const response = await this.fetch(
      `${API}/node/assignments?version=${version}&wait=${waitSeconds}`,
      { method: 'GET', signal: stop },
      waitSeconds * 1000 + POLL_SLACK_MS,
    );
    return assignmentsAnswerSchema.parse(await answer(response));
  }

  /** The state of every assigned replica; also the node's heartbeat. */
  async report(replicas: ReplicaReport[], stop: AbortSignal): Promise<void> {
    await answer(
      await this.fetch(`${API}/node/reports`, { method: 'PUT', body: JSON.stringify({ replicas }), signal: stop }, CALL_TIMEOUT_MS),
    );
  }

  /** The log requests addressed to this node, once there are some or after `waitSeconds`. */
  async logRequests(waitSeconds: number, stop: AbortSignal): Promise<LogRequest[]> {
    const response = await this.fetch(
      `${API}/node/log-requests?wait=${waitSeconds}`,
      { method: 'GET', signal: stop },
      waitSeconds * 1000 + POLL_SLACK_MS,
    );
    return logRequestsSchema.parse(await answer(response)).requests;
  }

  /**
   * Streams the lines (NDJSON) as the answer to request `id`, until they end or the registry answers (its
   * reader went away): then `lines` is ended too.
   */
  async sendLogs(id: string, lines: AsyncIterable<ReplicaLogLine>, done: AbortController): Promise<void> {
    const body = Readable.toWeb(Readable.from(ndjson(lines))) as ReadableStream<Uint8Array>;
    try {
      const response = await fetch(`${this.baseUrl}${API}/node/logs/${encodeURIComponent(id)}`, {
        method: 'POST',
        body,
        duplex: 'half',
        signal: done.signal,
        headers: { 'Content-Type': 'application/x-ndjson', Authorization: `Bearer ${this.credential ?? ''}` },
      } as RequestInit);
      await answer(response);
    } finally {
      done.abort();
    }
  }

  /** A token that pulls the images of the node's assigned replicas and nothing else; null when the registry has no auth. */
  async pullToken(): Promise<MintedPullToken> {
    return pullTokenSchema.parse(await answer(await this.fetch(`${API}/node/pull-token`, { method: 'POST' }, CALL_TIMEOUT_MS)));
  }

  async heartbeat(stop: AbortSignal): Promise<void> {
    await answer(await this.fetch(`${API}/node/heartbeat`, { method: 'POST', signal: stop }, CALL_TIMEOUT_MS));
  }

  private fetch(path: string, init: RequestInit, timeoutMs: number): Promise<Response> {
    return fetch(`${this.baseUrl}${path}`, {
      ...init,
      signal: init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
      headers: {
        'Content-Type': 'application/json',
        ...(this.credential === undefined ? {} : { Authorization: `Bearer ${this.credential}` }),
      },
    });
  }
}

async function answer(response: Response): Promise<unknown> {
  const text = await response.text();
  if (response.status === 401) throw new NodeRejectedError(`the registry refused the node: ${errorMessage(text)}`);
  if (response.status >= 400 && response.status < 500)
    throw new NodeRequestRefusedError(`the registry refused the request (${response.status}): ${errorMessage(text)}`);
  if (!response.ok) throw new Error(`the registry answered ${response.status}: ${errorMessage(text)}`);
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ message?: string }> };
    return body.errors?.[0]?.message ?? text;
  } catch {
    return text;
  }
}

async function* ndjson(lines: AsyncIterable<ReplicaLogLine>): AsyncGenerator<string> {
  for await (const line of lines) yield `${JSON.stringify(line)}\n`;
}
