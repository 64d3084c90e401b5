import type { FinishReport } from '../../platform/build-worker-api.js';
import type { Redis } from 'ioredis';
import { BuildKeys } from './build-keys.js';
import { QueueSignal } from './queue-signal.js';
import type { BuildJob, BuildRecord, BuildState } from './build-types.js';

/** A build to queue: the job without its id (the queue numbers it) and the slot a newer build of it takes over. */
export interface NewBuild {
  job: Omit<BuildJob, 'id'>;
  slot: string;
}

export interface QueueOptions {
  concurrency: number;
  cancelRunning: boolean;
  /** The forge's delivery id, remembered so a redelivery queues nothing; '' for none. */
  delivery: string;
  deliveryTtlSeconds: number;
}

export interface Claim {
  id: string;
  attempt: number;
  /** How long the job sat in the queue (ms) since it was created. */
  waitedMs: number;
}

// Queues the builds of one push in one step (with the delivery id, so a redelivery queues nothing), each
// taking its slot: a queued build of the slot is superseded, a running one asked to cancel.
const ENQUEUE = `
if KEYS[4] ~= '' and redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[2]) == false then return 'duplicate' end
local now, prefix, cancelRunning, retention = tonumber(ARGV[1]), ARGV[3], ARGV[4], tonumber(ARGV[7])
local ids = {}
for i = 5, #KEYS do
  local record = ARGV[7 + (i - 4)]
  local old = redis.call('GET', KEYS[i])
  if old then
    local oldKey = prefix .. old
    local state = redis.call('HGET', oldKey, 'state')
    if state == 'queued' then
      redis.call('HSET', oldKey, 'state', 'superseded', 'finishedAt', now)
      redis.call('ZREM', KEYS[3], old)
      redis.call('EXPIRE', oldKey, retention)
    elseif state == 'running' and cancelRunning == '1' then
      redis.call('HSET', oldKey, 'cancel', '1')
    end
  end
  local id = tostring(redis.call('INCR', KEYS[1]))
  redis.call('HSET', prefix .. id, 'record', record, 'state', 'queued', 'attempt', 0, 'worker', '', 'cancel', '0',
    'project', ARGV[5], 'concurrency', ARGV[6], 'createdAt', now)
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('ZADD', KEYS[3], now, id)
  redis.call('SET', KEYS[i], id)
  ids[#ids + 1] = id
end
return ids
`;

// Jobs whose lease ran out (their worker is gone) go back to the front of the queue; a cancelled one ends instead.
const REQUEUE_EXPIRED = `
local function requeueExpired(queue, running, now, prefix, active)
  local count = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', running, '-inf', now, 'LIMIT', 0, 100)) do
    local key = prefix .. id
    redis.call('ZREM', running, id)
    redis.call('SREM', active .. (redis.call('HGET', key, 'project') or ''), id)
    if redis.call('HGET', key, 'cancel') == '1' then
      redis.call('HSET', key, 'state', 'cancelled', 'finishedAt', now, 'error', 'cancelled while its worker was gone')
    elseif redis.call('HGET', key, 'state') == 'running' then
      redis.call('HSET', key, 'state', 'queued', 'worker', '')
      redis.call('ZADD', queue, tonumber(redis.call('HGET', key, 'createdAt')), id)
    end
    count = count + 1
  end
  return count
end
`;

const SWEEP = `${REQUEUE_EXPIRED}
return requeueExpired(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2], ARGV[3])
`;

// Expired leases first (a claim sees the jobs of gone workers even between sweeps); then the oldest job whose
// project is under its concurrency limit is leased to the worker. A job queued less than the affinity window
// ago is left to the worker that took its project's last job while that one is asking for work too: it has
// the project's git mirror and build cache. A worker that gets nothing is marked waiting until its poll ends.
const CLAIM = `${REQUEUE_EXPIRED}
local now, lease, worker, prefix, active = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local affinityMs, pollEnd = tonumber(ARGV[7]), tonumber(ARGV[8])
requeueExpired(KEYS[1], KEYS[2], now, prefix, active)
local function leftToItsBuilder(key, project)
  if now - tonumber(redis.call('HGET', key, 'createdAt')) >= affinityMs then return false end
  local builder = redis.call('HGET', KEYS[4], project)
  if builder == false or builder == worker then return false end
  local waitsUntil = redis.call('ZSCORE', KEYS[3], builder)
  return waitsUntil ~= false and tonumber(waitsUntil) > now
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[6]) - 1)) do
  local key = prefix .. id
  local project = redis.call('HGET', key, 'project')
  if project == false then
    redis.call('ZREM', KEYS[1], id)
  elseif redis.call('SCARD', active .. project) < tonumber(redis.call('HGET', key, 'concurrency')) and not leftToItsBuilder(key, project) then
    redis.call('ZREM', KEYS[1], id)
    local attempt = redis.call('HINCRBY', key, 'attempt', 1)
    redis.call('HSET', key, 'state', 'running', 'worker', worker, 'claimedAt', now)
    redis.call('ZADD', KEYS[2], now + lease, id)
    redis.call('SADD', active .. project, id)
    redis.call('HSET', KEYS[4], project, worker)
    redis.call('ZREM', KEYS[3], worker)
    return {id, attempt, now - tonumber(redis.call('HGET', key, 'createdAt'))}
  end
end
redis.call('ZADD', KEYS[3], pollEnd, worker)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
return false
`;

const STOP_WAITING = `redis.call('ZREM', KEYS[1], ARGV[1])`;

// Every worker call proves it still holds the job: the worker and attempt it was given, the job still running.
const HOLDS = `
local function holds()
  return redis.call('HGET', KEYS[1], 'state') == 'running' and redis.call('HGET', KEYS[1], 'worker') == ARGV[1]
    and redis.call('HGET', KEYS[1], 'attempt') == ARGV[2]
end
`;

const RENEW = `${HOLDS}
if not holds() then return -1 end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[5])
return tonumber(redis.call('HGET', KEYS[1], 'cancel'))
`;

// The lines ARGV[first..] join the log while it has room for them; one line says when some did not.
const APPEND = `
local function append(log, maxLines, first)
  local room = maxLines - redis.call('LLEN', log)
  for i = first, math.min(#ARGV, first - 1 + room) do redis.call('RPUSH', log, ARGV[i]) end
  if room > 0 and #ARGV - first + 1 > room then redis.call('RPUSH', log, '[log truncated: too many lines]') end
end
`;

const APPEND_LOG = `${HOLDS}${APPEND}
if not holds() then return -1 end
append(KEYS[2], tonumber(ARGV[3]), 4)
return 1
`;

const SET_SOURCE = `${HOLDS}
if not holds() then return -1 end
redis.call('HSET', KEYS[1], 'commit', ARGV[3], 'tags', ARGV[4])
return 1
`;

// A failure of a build asked to cancel is its cancellation; the log's last lines join it; the lease, the
// project's slot and the queue entry go.
const FINISH = `${HOLDS}${APPEND}
if not holds() then return false end
append(KEYS[4], tonumber(ARGV[8]), 9)
local state = ARGV[3]
if state == 'failed' and redis.call('HGET', KEYS[1], 'cancel') == '1' then state = 'cancelled' end
redis.call('HSET', KEYS[1], 'state', state, 'finishedAt', ARGV[4], 'result', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('SREM', KEYS[3], ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[4], ARGV[6])
return state
`;

const CANCEL = `
local state = redis.call('HGET', KEYS[1], 'state')
if state == false then return false end
if state == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finishedAt', ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 'cancelled'
end
if state == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'cancelling'
end
return state
`;

/** The durable build queue: jobs, leases, superseding and logs in the registry's Redis, every change one script. */
export class BuildQueue {
  readonly keys: BuildKeys;
  /** Told of every change that may make a job claimable on this replica. */
  readonly changes = new QueueSignal();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly retentionSeconds: number,
  ) {
    this.keys = new BuildKeys(prefix);
  }

  /** The new builds' ids, or 'duplicate' when the delivery was queued before. */
  async enqueue(project: string, builds: NewBuild[], options: QueueOptions): Promise<string[] | 'duplicate'> {
    const keys = [
      this.keys.sequence(),
      this.keys.jobs(),
      this.keys.queue(),
      options.delivery === '' ? '' : this.keys.delivery(project, options.delivery),
      ...builds.map((build) => this.keys.slot(build.slot)),
    ];
    const args = [
      String(Date.now()),
      String(options.deliveryTtlSeconds),
      this.keys.jobPrefix(),
      options.cancelRunning ? '1' : '0',
      project,
      String(options.concurrency),
      String(this.retentionSeconds),
      ...builds.map((build) => JSON.stringify(build.job)),
    ];
    const ids = (await this.redis.eval(ENQUEUE, keys.length, ...keys, ...args)) as string[] | 'duplicate';
    if (ids !== 'duplicate' && ids.length > 0) this.changes.notify();
    return ids;
  }

  /**
   * The oldest job the worker may take, leased to it; with none, the worker counts as waiting for work until
   * `pollEnd` (ms) or stopWaiting, so that a new job of a project it built last is left to it for `affinityMs`.
   */
  async claim(worker: string, leaseMs: number, pollEnd: number, affinityMs: number): Promise<Claim | undefined> {
    const claimed = (await this.redis.eval(
      CLAIM,
      4,
      this.keys.queue(),
      this.keys.running(),
      this.keys.waiting(),
      this.keys.builders(),
      String(Date.now()),
      String(leaseMs),
      worker,
      this.keys.jobPrefix(),
      this.keys.activePrefix(),
      '200',
      String(affinityMs),
      String(pollEnd),
    )) as [string, number, number] | null;
    return claimed ? { id: claimed[0], attempt: claimed[1], waitedMs: claimed[2] } : undefined;
  }

  /** The worker's poll ended without a job: its builds' new jobs are no longer left to it. */
  async stopWaiting(worker: string): Promise<void> {
    await this.redis.eval(STOP_WAITING, 1, this.keys.waiting(), worker);
  }

  /** Puts the jobs whose lease ran out back in the queue (or ends them, if asked to cancel); how many there were. */
  async requeueExpired(): Promise<number> {
    const count = (await this.redis.eval(
      SWEEP,
      2,
      this.keys.queue(),
      this.keys.running(),
      String(Date.now()),
      this.keys.jobPrefix(),
      this.keys.activePrefix(),
    )) as number;
    if (count > 0) this.changes.notify();
    return count;
  }

  /** Whether the build was asked to cancel; undefined when the worker no longer holds it. */
  async renew(id: string, worker: string, attempt: number, leaseMs: number): Promise<boolean | undefined> {
    const cancel = (await this.redis.eval(
      RENEW,
      2,
      this.keys.job(id),
      this.keys.running(),
      worker,
      String(attempt),
      String(Date.now()),
      String(leaseMs),
      id,
    )) as number;
    return cancel === -1 ? undefined : cancel === 1;
  }

  async appendLog(id: string, worker: string, attempt: number, lines: string[], maxLines: number): Promise<boolean> {
    if (lines.length === 0) return true;
    const done = await this.redis.eval(
      APPEND_LOG,
      2,
      this.keys.job(id),
      this.keys.log(id),
      worker,
      String(attempt),
      String(maxLines),
      ...lines,
    );
    return done === 1;
  }

  async setSource(id: string, worker: string, attempt: number, commit: string, tags: string[]): Promise<boolean> {
    return (await this.redis.eval(SET_SOURCE, 1, this.keys.job(id), worker, String(attempt), commit, JSON.stringify(tags))) === 1;
  }

  /** The final state, or undefined when the worker no longer holds the build. `lastLines` end its log. */
  async finish(
    id: string,
    project: string,
    worker: string,
    attempt: number,
    report: FinishReport,
    log: { lastLines: string[]; maxLines: number },
  ): Promise<BuildState | undefined> {
    const { outcome, ...result } = report;
    const state = (await this.redis.eval(
      FINISH,
      4,
      this.keys.job(id),
      this.keys.running(),
      this.keys.active(project),
      this.keys.log(id),
      worker,
      String(attempt),
      outcome,
      String(Date.now()),
      JSON.stringify(result),
      String(this.retentionSeconds),
      id,
      String(log.maxLines),
      ...log.lastLines,
    )) as BuildState | null;
    // The project's slot is free: a job of it held back by its concurrency limit can run.
    if (state) this.changes.notify();
    return state ?? undefined;
  }

  /** 'cancelled' (it was queued), 'cancelling' (its worker is told at its next renewal), or its finished state. */
  async cancel(id: string): Promise<string | undefined> {
    const state = await this.redis.eval(
      CANCEL,
      2,
      this.keys.job(id),
      this.keys.queue(),
      String(Date.now()),
      String(this.retentionSeconds),
      id,
    );
    return (state as string | null) ?? undefined;
  }

  async record(id: string): Promise<BuildRecord | undefined> {
    return toRecord(id, await this.redis.hgetall(this.keys.job(id)));
  }

  /** The newest builds first; builds whose retention ran out leave the listing. */
  async list(limit: number, keep: (record: BuildRecord) => boolean): Promise<BuildRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.jobs(), 0, -1);
    const found: BuildRecord[] = [];
    const expired: string[] = [];
    for (let start = 0; start < ids.length && found.length < limit; start += 100) {
      const page = ids.slice(start, start + 100);
      const pipeline = this.redis.pipeline();
      for (const id of page) pipeline.hgetall(this.keys.job(id));
      const replies = (await pipeline.exec()) ?? [];
      page.forEach((id, index) => {
        const record = toRecord(id, (replies[index]?.[1] ?? {}) as Record<string, string>);
        if (!record) expired.push(id);
        else if (keep(record) && found.length < limit) found.push(record);
      });
    }
    if (expired.length > 0) await this.redis.zrem(this.keys.jobs(), ...expired);
    return found;
  }

  async log(id: string, from: number): Promise<string[]> {
    return this.redis.lrange(this.keys.log(id), from, -1);
  }

  async depth(): Promise<number> {
    return this.redis.zcard(this.keys.queue());
  }

  /** Workers asking for work now (their long-poll open, no job yet): the idle part of the build farm. */
  async waitingWorkers(): Promise<number> {
    return this.redis.zcount(this.keys.waiting(), `(${Date.now()}`, '+inf');
  }
}

function toRecord(id: string, fields: Record<string, string>): BuildRecord | undefined {
  if (fields.record === undefined) return undefined;
  const job = JSON.parse(fields.record) as Omit<BuildJob, 'id'>;
  const result = fields.result ? (JSON.parse(fields.result) as Omit<FinishReport, 'outcome'>) : undefined;
  return {
    id,
    ...job,
    commit: fields.commit ?? job.commit,
    state: fields.state as BuildState,
    attempt: Number(fields.attempt ?? 0),
    worker: fields.worker ?? '',
    claimedAt: fields.claimedAt ? Number(fields.claimedAt) : null,
    finishedAt: fields.finishedAt ? Number(fields.finishedAt) : null,
    digest: result?.digest ?? '',
    tags: result?.tags ?? (fields.tags ? (JSON.parse(fields.tags) as string[]) : []),
    error: result?.error ?? fields.error ?? '',
    steps: result?.steps ?? [],
    cancelRequested: fields.cancel === '1',
  };
}
