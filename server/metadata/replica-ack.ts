import type { Redis } from 'ioredis';
import type { Middleware } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';

/** Requests that only read: nothing they did needs a replica's confirmation. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Durable acknowledgement (redis.minReplicasAcked): before the registry answers a write, Redis confirms that
 * `replicas` replicas hold everything the primary had written by then, so a failover cannot take back what a
 * client was told is stored.
 *
 * WAIT only covers the calling connection's own writes, and a WAIT blocks its connection until it returns.
 * So the acknowledger has a connection of its own and writes one marker before each WAIT: the replication
 * stream is ordered, so a replica that has the marker has every write any connection (requests, collector,
 * webhooks) made before it, and requests never queue behind a WAIT. Concurrent requests share rounds: one
 * round runs at a time, and every request that arrives meanwhile joins the next one.
 */
export class ReplicaAcknowledger {
  private readonly redis: Redis;
  private current: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private connectionEpoch = 0;

  constructor(
    requests: Redis,
    private readonly markerKey: string,
    private readonly replicas: number,
    private readonly timeoutMs: number,
  ) {
    // A request's writes went to the primary its connection was on; if that connection broke meanwhile (a
    // failover), they may be on a dead primary only, and a WAIT on the new one proves nothing about them.
    requests.on('close', () => this.connectionEpoch++);
    // Never resent after its connection broke: a round either completes on the primary it was sent to or fails.
    this.redis = requests.duplicate({ enableAutoPipelining: false, autoResendUnfulfilledCommands: false });
    this.redis.on('error', () => undefined);
  }

  /** What confirm() is given: the requests' connection as it was when a request began. */
  get epoch(): number {
    return this.connectionEpoch;
  }

  /**
   * Resolves once `replicas` replicas have every write made before the call; throws 503 when they do not
   * confirm in time, or when the requests' connection broke since `since` (an epoch).
   */
  async confirm(since: number): Promise<void> {
    if (since !== this.connectionEpoch) throw notDurable('the connection to the Redis primary broke during the write (a failover?)');
    await this.joinRound();
  }

  private joinRound(): Promise<void> {
    if (!this.current) return this.startRound();
    this.next ??= this.current
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.startRound();
      });
    return this.next;
  }

  close(): void {
    this.redis.disconnect();
  }

  private startRound(): Promise<void> {
    const round = this.waitForReplicas().finally(() => {
      if (this.current === round) this.current = undefined;
    });
    this.current = round;
    return round;
  }

  private async waitForReplicas(): Promise<void> {
    let acknowledged: number;
    try {
      const results = await this.redis.pipeline().incr(this.markerKey).call('WAIT', this.replicas, this.timeoutMs).exec();
      const failure = results?.find(([error]) => error !== null)?.[0];
      if (failure) throw failure;
      acknowledged = Number(results?.[1]?.[1]);
    } catch (error) {
      throw notDurable(`Redis could not confirm the write on its replicas (${(error as Error).message})`);
    }
    if (acknowledged < this.replicas) {
      throw notDurable(
        `only ${acknowledged} of the ${this.replicas} Redis replicas required confirmed the write within ${this.timeoutMs} ms`,
      );
    }
  }
}

function notDurable(reason: string): CodedError {
  return new CodedError(DistributionErrors.UNAVAILABLE, `${reason}; it may not survive a failover: retry`, {
    headers: { 'Retry-After': '1' },
  });
}

/**
 * The one place durable acknowledgement applies: after any request that may have written (every method but
 * GET, HEAD and OPTIONS) succeeded, and before its answer leaves. Whatever store the handler wrote to (metadata,
 * uploads, webhook events, accounts), its writes are on the primary by then and the WAIT round covers them.
 */
export function acknowledgeDurably(acknowledger: ReplicaAcknowledger): Middleware {
  return async (ctx, next) => {
    const epoch = acknowledger.epoch;
    await next();
    if (!READ_METHODS.has(ctx.method) && ctx.status < 400) await acknowledger.confirm(epoch);
  };
}
