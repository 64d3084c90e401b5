import type { Redis } from 'ioredis';
import { RegistryKeys } from '../metadata/keys.js';
import { LuaScript } from '../redis/lua-script.js';
import type { LeaseFence } from '../metadata/metadata-store.js';

/** One queued delivery: the exact body that is signed and sent, and what the log shows about it. */
export interface QueuedEvent {
  id: string;
  action: string;
  repository: string;
  body: string;
}

export interface DeliveryLogEntry {
  endpoint: string;
  eventId: string;
  action: string;
  repository: string;
  attempt: number;
  outcome: 'delivered' | 'failed' | 'dead_lettered';
  status?: number;
  error?: string;
  at: string;
}

// Removes the head only if it is still the entry delivered and the worker still holds the endpoint's lease
// (KEYS[5] holds ARGV[6]): a worker that lost its lease while a delivery hung (or in a failover that lost the
// lease) must not pop the event after it, which another replica may not have delivered yet.
const FINISH_HEAD = new LuaScript(`
if redis.call('GET', KEYS[5]) ~= ARGV[6] then return 0 end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
if ARGV[5] == '1' then redis.call('RPUSH', KEYS[4], ARGV[1]) end
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return 1`);

// Moves dead letters (all, or the one whose event id is ARGV[1]) to the tail of the endpoint's queue, in the
// order they died, atomically: a redelivery can neither lose an event nor queue it twice.
const REQUEUE_DEAD = new LuaScript(`
local moved = 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if ARGV[1] == '' or cjson.decode(raw).id == ARGV[1] then
    redis.call('LREM', KEYS[1], 1, raw)
    redis.call('RPUSH', KEYS[2], raw)
    moved = moved + 1
  end
end
return moved`);

/**
 * The durable webhook queues in Redis: a list per endpoint (so each endpoint receives events in order and a
 * slow one holds up only itself), an attempts hash, a dead-letter list per endpoint and one capped delivery log.
 */
export class WebhookQueue {
  private readonly keys: RegistryKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly logSize: number,
  ) {
    this.keys = new RegistryKeys(prefix);
  }

  /** Appends the event to each endpoint's queue in one transaction: one round trip, all or nothing. */
  async enqueue(endpoints: string[], event: QueuedEvent): Promise<void> {
    const entry = JSON.stringify(event);
    const transaction = this.redis.multi();
    for (const endpoint of endpoints) transaction.rpush(this.keys.webhookQueue(endpoint), entry);
    await transaction.exec();
  }

  /** The oldest undelivered event, as its raw entry (the finish calls compare against it). */
  async head(endpoint: string): Promise<{ raw: string; event: QueuedEvent } | undefined> {
    const raw = await this.redis.lindex(this.keys.webhookQueue(endpoint), 0);
    return raw === null ? undefined : { raw, event: JSON.parse(raw) as QueuedEvent };
  }

  /** Counts a failed attempt and logs it; returns the attempts made so far. */
  async recordFailure(entry: Omit<DeliveryLogEntry, 'attempt' | 'at' | 'outcome'>): Promise<number> {
    const attempt = await this.redis.hincrby(this.keys.webhookAttempts(entry.endpoint), entry.eventId, 1);
    await this.appendLog({ ...entry, attempt, outcome: 'failed', at: new Date().toISOString() });
    return attempt;
  }

  async attempts(endpoint: string, eventId: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.webhookAttempts(endpoint), eventId)) ?? 0);
  }

  /** Removes the delivered (or given-up) head; false when it was no longer the head or `fence` lost its lease. */
  async finish(raw: string, entry: DeliveryLogEntry, fence: LeaseFence): Promise<boolean> {
    const { endpoint } = entry;
    const keys = [
      this.keys.webhookQueue(endpoint),
      this.keys.webhookAttempts(endpoint),
      this.keys.webhookLog(),
      this.keys.webhookDeadLetters(endpoint),
      this.keys.lease(fence.name),
    ];
    const dead = entry.outcome === 'dead_lettered' ? '1' : '0';
    const args = [raw, entry.eventId, JSON.stringify(entry), this.logSize, dead, fence.holder];
    const done = await FINISH_HEAD.run(this.redis, args, keys);
    return done === 1;
  }

  depth(endpoint: string): Promise<number> {
    return this.redis.llen(this.keys.webhookQueue(endpoint));
  }

  /** The newest delivery attempts first. */
  async log(limit: number, endpoint?: string): Promise<DeliveryLogEntry[]> {
    const entries = (await this.redis.lrange(this.keys.webhookLog(), 0, this.logSize - 1)).map(
      (raw) => JSON.parse(raw) as DeliveryLogEntry,
    );
    return entries.filter((entry) => endpoint === undefined || entry.endpoint === endpoint).slice(0, limit);
  }

  async deadLetters(endpoint: string): Promise<QueuedEvent[]> {
    return (await this.redis.lrange(this.keys.webhookDeadLetters(endpoint), 0, -1)).map((raw) => JSON.parse(raw) as QueuedEvent);
  }

  /**
   * Queues dead letters again, behind the events already waiting (so they arrive after newer events), with
   * a fresh count of attempts. `eventId` picks one; without it, all of them. Returns how many were queued.
   */
  async redeliverDeadLetters(endpoint: string, eventId?: string): Promise<number> {
    return Number(
      await REQUEUE_DEAD.run(this.redis, [eventId ?? ''], [this.keys.webhookDeadLetters(endpoint), this.keys.webhookQueue(endpoint)]),
    );
  }

  private async appendLog(entry: DeliveryLogEntry): Promise<void> {
    await this.redis
      .multi()
      .lpush(this.keys.webhookLog(), JSON.stringify(entry))
      .ltrim(this.keys.webhookLog(), 0, this.logSize - 1)
      .exec();
  }
}
