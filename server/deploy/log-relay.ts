import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { CodedError } from '../../platform/errors.js';
import { DeployErrors } from './deploy-errors.js';
import type { DeployKeys } from './deploy-keys.js';

/** What a node is asked for: the logs of some of its replicas. */
export interface LogRequest {
  id: string;
  replicas: string[];
  tail: number | null;
  follow: boolean;
}

/** One line of a replica's log, with the node it came from (named by the node's credential, not by the node). */
export interface RelayedLine {
  node: string;
  replica: string;
  stream: 'stdout' | 'stderr';
  time: string;
  text: string;
}

const lineSchema = z.strictObject({
  replica: z.string().min(1),
  stream: z.enum(['stdout', 'stderr']),
  time: z.string(),
  text: z.string().max(64 * 1024),
});

const POLL_MS = 200;
/** Keys of a request outlive it by this long, then go by themselves (a reader or node that died). */
const REQUEST_TTL_SECONDS = 120;
/** A node that has not sent all of its lines within this long (it is down) is given up on. */
const ANSWER_TIMEOUT_MS = 15_000;
const MAX_STREAM_LENGTH = 10_000;
const READ_BATCH = 500;
const END = '\u0000end';

/**
 * `berth service logs` through the registry: the reader asks each node (a request the node takes on its
 * own long-poll, as with its assignments: the registry never calls a node), the nodes send their lines
 * back over HTTP, and the lines meet in a Redis stream, so that reader and nodes may be served by
 * different registry replicas. A node may send lines only of the replicas it was asked about.
 */
export class LogRelay {
  constructor(
    private readonly redis: Redis,
    private readonly keys: DeployKeys,
  ) {}

  /** Asks each node for its replicas' lines and yields them as they come, until `signal` (or all ended). */
  async *gather(
    targets: Map<string, string[]>,
    options: { tail: number | null; follow: boolean },
    signal: AbortSignal,
  ): AsyncGenerator<RelayedLine> {
    const id = randomBytes(12).toString('hex');
    const ask = this.redis.multi();
    for (const [node, replicas] of targets) {
      ask.hset(this.keys.logSenders(id), node, JSON.stringify(replicas));
      ask.rpush(
        this.keys.logRequests(node),
        JSON.stringify({ id, replicas, tail: options.tail, follow: options.follow } satisfies LogRequest),
      );
      ask.expire(this.keys.logRequests(node), REQUEST_TTL_SECONDS);
    }
    await ask.expire(this.keys.logSenders(id), REQUEST_TTL_SECONDS).exec();
    const unanswered = new Set(targets.keys());
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    let last = '0';
    try {
      while (!signal.aborted && (options.follow || unanswered.size > 0) && (options.follow || Date.now() < deadline)) {
        const entries = await this.redis.xrange(this.keys.logLines(id), `(${last}`, '+', 'COUNT', READ_BATCH);
        for (const [entryId, fields] of entries) {
          last = entryId;
          const line = JSON.parse(fields[1] ?? '{}') as RelayedLine;
          if (line.text === END) unanswered.delete(line.node);
          else yield line;
        }
        if (entries.length < READ_BATCH) await sleep(POLL_MS);
      }
    } finally {
      await this.redis.multi().set(this.keys.logClosed(id), '1', 'EX', REQUEST_TTL_SECONDS).del(this.keys.logLines(id)).exec();
    }
  }

  /** The requests waiting for `node`, once there are some or after `waitMs`. */
  async pending(node: string, waitMs: number, aborted: () => boolean): Promise<LogRequest[]> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const [taken] = (await this.redis.multi().lrange(this.keys.logRequests(node), 0, -1).del(this.keys.logRequests(node)).exec()) ?? [];
      const requests = (taken?.[1] as string[] | undefined) ?? [];
      if (requests.length > 0 || Date.now() >= deadline || aborted()) return requests.map((text) => JSON.parse(text) as LogRequest);
      await sleep(POLL_MS);
    }
  }

  /**
   * Takes the NDJSON lines `node` sends for request `id`, until they end or the reader went away (checked
   * between lines and every poll); only the replicas the node was asked about are taken.
   */
  async receive(node: string, id: string, body: Readable): Promise<void> {
    const allowed = await this.redis.hget(this.keys.logSenders(id), node);
    if (allowed === null) throw new CodedError(DeployErrors.REQUEST_INVALID, `no log request ${id} for node ${node}`);
    const replicas = new Set(JSON.parse(allowed) as string[]);
    const stream = this.keys.logLines(id);
    let closed = false;
    const watch = setInterval(() => {
      void this.redis.exists(this.keys.logClosed(id)).then((found) => {
        if (found) {
          closed = true;
          body.destroy();
        }
      });
    }, POLL_MS);
    try {
      for await (const text of createInterface({ input: body, crlfDelay: Infinity })) {
        if (closed) return;
        if (!text.trim()) continue;
        const parsed = lineSchema.safeParse(parseJson(text));
        if (!parsed.success || !replicas.has(parsed.data.replica))
          throw new CodedError(DeployErrors.REQUEST_INVALID, `not a line of a replica asked for: ${text.slice(0, 200)}`);
        await this.append(stream, { node, ...parsed.data });
      }
    } catch (error) {
      if (!closed) throw error;
    } finally {
      clearInterval(watch);
    }
    if (!closed) await this.append(stream, { node, replica: '', stream: 'stdout', time: '', text: END });
  }

  private async append(stream: string, line: RelayedLine): Promise<void> {
    await this.redis
      .multi()
      .xadd(stream, 'MAXLEN', '~', MAX_STREAM_LENGTH, '*', 'line', JSON.stringify(line))
      .expire(stream, REQUEST_TTL_SECONDS)
      .exec();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
