import type { Redis } from 'ioredis';
import { LuaScript } from '../redis/lua-script.js';
import { DeployKeys, serviceId } from './deploy-keys.js';
import {
  EMPTY_STATE,
  type Assignment,
  type HistoryEntry,
  type NodeRecord,
  type ReplicaReport,
  type Revision,
  type ServiceRecord,
  type ServiceState,
} from './deploy-types.js';

const HISTORY_LENGTH = 200;
/**
 * Revisions kept per service besides those its state refers to (running, rolling to, last healthy): every
 * push to a tracked tag makes one, and kept all they would grow without end.
 */
export const REVISIONS_KEPT = 20;

/** The revisions of one deploy, stored at once. `revision` lacks its number, which the script assigns. */
export interface NewRevision {
  service: string;
  revision: Omit<Revision, 'number'>;
  /** The tag this service follows, if any. */
  tracked: { repository: string; tag: string } | null;
}

/** A fenced controller write: the holder and epoch of the lease it believes it holds, and the generation it read. */
export interface ControllerWrite {
  holder: string;
  epoch: number;
  serviceId: string;
  generation: number;
  state: ServiceState;
  history: HistoryEntry[];
  quarantine: { repository: string; tag: string; digest: string } | null;
  /** Per node: replica id -> assignment (set), or null (remove). */
  assignments: Record<string, Record<string, Assignment | null>>;
}

export type WriteOutcome = 'ok' | 'stale' | 'conflict';

/** The controller's removal of a service marked removed, fenced as a ControllerWrite. */
export interface ServiceRemoval {
  holder: string;
  epoch: number;
  serviceId: string;
  generation: number;
  /** The tags its revisions followed. */
  tracked: Array<{ repository: string; tag: string }>;
  /** Per node: the ids of its replicas assigned there. */
  assignments: Record<string, string[]>;
}

// Every service of a deploy gets its revision in one step: a stack is never half-deployed. A service being
// removed (desired 0) that is deployed again is no longer being removed. Revisions older than the last
// REVISIONS_KEPT go, unless the controller's state refers to them.
const CREATE_REVISIONS = new LuaScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local numbers = {}
local n = (#KEYS - 3) / 4
for i = 0, n - 1 do
  local svc, revs, hist, track = KEYS[4 + 4 * i], KEYS[5 + 4 * i], KEYS[6 + 4 * i], KEYS[7 + 4 * i]
  local name, rev, entry, tracked = ARGV[2 + 4 * i], ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i]
  redis.call('SADD', KEYS[2], name)
  redis.call('SREM', KEYS[3], ARGV[1] .. '/' .. name)
  local number = redis.call('HINCRBY', revs, 'seq', 1)
  redis.call('HSET', revs, tostring(number), rev)
  redis.call('HSET', svc, 'desired', number)
  if number > ${REVISIONS_KEPT} then
    local kept = {}
    local text = redis.call('HGET', svc, 'state')
    if text then
      local state = cjson.decode(text)
      kept[tostring(state.revision)] = true
      if type(state.rollout) == 'table' then
        kept[tostring(state.rollout.target)] = true
        kept[tostring(state.rollout.revision)] = true
        kept[tostring(state.rollout.lastHealthy)] = true
      end
      for _, slot in pairs(state.slots) do kept[tostring(slot.revision)] = true end
    end
    for _, field in ipairs(redis.call('HKEYS', revs)) do
      if field ~= 'seq' and tonumber(field) <= number - ${REVISIONS_KEPT} and not kept[field] then redis.call('HDEL', revs, field) end
    end
  end
  redis.call('LPUSH', hist, (string.gsub(entry, '"revision":0', '"revision":' .. number, 1)))
  redis.call('LTRIM', hist, 0, ${HISTORY_LENGTH - 1})
  if tracked == '1' then redis.call('SADD', track, ARGV[1] .. '/' .. name) end
  numbers[#numbers + 1] = number
end
redis.call('PUBLISH', ARGV[#ARGV], 'deploy')
return numbers
`);

/**
 * The Lua that applies a controller write's assignment changes: from KEYS[first] on, one node's assignments
 * key each, and from ARGV[a] on, per node: the number of replicas set, replica and assignment JSON each, the
 * number removed, their ids; each node's version is bumped and its key published on the channel in the last
 * ARGV (its long-poll wakes).
 */
function assignmentChanges(first: string): string {
  return `for k = ${first}, #KEYS do
  local sets = tonumber(ARGV[a]); a = a + 1
  for i = 1, sets do
    redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1]); a = a + 2
  end
  local dels = tonumber(ARGV[a]); a = a + 1
  for i = 1, dels do
    redis.call('HDEL', KEYS[k], ARGV[a]); a = a + 1
  end
  redis.call('HINCRBY', KEYS[k], 'version', 1)
  redis.call('PUBLISH', ARGV[#ARGV], KEYS[k])
end`;
}

// The fencing check and the whole change in one step: a controller whose lease was taken over (another
// holder, or a newer epoch) changes nothing, nor does one that read the service before another write, nor
// one placing a service removed since it read it.
const CONTROLLER_WRITE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'stale' end
local generation = redis.call('HGET', KEYS[3], 'generation') or '0'
if generation ~= ARGV[3] then return 'conflict' end
local desired = redis.call('HGET', KEYS[3], 'desired')
if not desired or desired == '0' then return 'conflict' end
redis.call('HSET', KEYS[3], 'state', ARGV[4], 'generation', tonumber(ARGV[3]) + 1)
local a = 5
local entries = tonumber(ARGV[a]); a = a + 1
for i = 1, entries do
  redis.call('LPUSH', KEYS[4], ARGV[a]); a = a + 1
end
redis.call('LTRIM', KEYS[4], 0, ${HISTORY_LENGTH - 1})
if ARGV[a] ~= '' then redis.call('SADD', KEYS[5], ARGV[a]) end
a = a + 1
${assignmentChanges('6')}
return 'ok'
`);

// \`stack rm\`: every service of the stack is marked for removal (desired 0) and the stack is gone from the
// lists, in one step; the controller then takes the replicas back. The caller names the services it read:
// a stack changed since (a service deployed into it) answers -1, to be read again; an unknown stack 0.
const REMOVE_STACK = new LuaScript(`
local names = #KEYS - 3
if redis.call('SCARD', KEYS[2]) == 0 then return 0 end
if redis.call('SCARD', KEYS[2]) ~= names then return -1 end
for i = 1, names do
  if redis.call('SISMEMBER', KEYS[2], ARGV[2 + i]) == 0 then return -1 end
end
for i = 1, names do
  redis.call('HSET', KEYS[3 + i], 'desired', 0)
  redis.call('SADD', KEYS[3], ARGV[1] .. '/' .. ARGV[2 + i])
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'remove')
return names
`);

// The controller's last write of a removed service, fenced as every write: its replicas' assignments go,
// and so does everything of it but the revision counter (a service deployed again under the name goes on
// numbering, so a node never takes a container of the old service for a revision of the new).
const REMOVE_SERVICE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'stale' end
if (redis.call('HGET', KEYS[3], 'generation') or '0') ~= ARGV[3] then return 'conflict' end
if redis.call('HGET', KEYS[3], 'desired') ~= '0' then return 'conflict' end
local seq = redis.call('HGET', KEYS[5], 'seq')
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
if seq then redis.call('HSET', KEYS[5], 'seq', seq) end
redis.call('SREM', KEYS[6], ARGV[4])
local trackers = tonumber(ARGV[5])
for k = 7, 6 + trackers do redis.call('SREM', KEYS[k], ARGV[4]) end
local a = 6
${assignmentChanges('7 + trackers')}
return 'ok'
`);

// A node's reports replace the last ones; only a change wakes the controller: every node reports each second,
// and a wake-up per report would run a pass over every service per node per second.
const REPLACE_REPORTS = new LuaScript(`
local old = redis.call('HGETALL', KEYS[1])
if #old == #ARGV - 1 then
  local last = {}
  for i = 1, #old, 2 do last[old[i]] = old[i + 1] end
  local same = true
  for i = 2, #ARGV, 2 do
    if last[ARGV[i]] ~= ARGV[i + 1] then same = false; break end
  end
  if same then return 0 end
end
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PUBLISH', ARGV[1], 'report')
return 1
`);

// A new holder takes the lease only when it is free, and every taking bumps the epoch: the fencing token.
const ACQUIRE_LEASE = new LuaScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('INCR', KEYS[2]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]))
end
return false
`);

const RENEW_LEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`);

const RELEASE_LEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`);

/** Stacks, services, revisions, nodes and assignments in the registry's Redis. */
export class DeployStore {
  readonly keys: DeployKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new DeployKeys(prefix);
  }

  async createRevisions(stack: string, revisions: NewRevision[], history: (service: string) => HistoryEntry): Promise<number[]> {
    const keys = [this.keys.stacks(), this.keys.stack(stack), this.keys.removing()];
    const args = [stack];
    for (const entry of revisions) {
      const id = serviceId(stack, entry.service);
      const tracked = entry.tracked ?? { repository: '', tag: '' };
      keys.push(this.keys.service(id), this.keys.revisions(id), this.keys.history(id), this.keys.trackers(tracked.repository, tracked.tag));
      args.push(
        entry.service,
        JSON.stringify(entry.revision),
        JSON.stringify({ ...history(entry.service), revision: 0 }),
        entry.tracked ? '1' : '0',
      );
    }
    args.push(this.keys.wakeChannel());
    return (await CREATE_REVISIONS.run(this.redis, args, keys)) as number[];
  }

  async stacks(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.stacks())).sort();
  }

  async stackServices(stack: string): Promise<string[]> {
    return (await this.redis.smembers(this.keys.stack(stack))).sort();
  }

  /**
   * Marks every service of the stack for removal and takes the stack off the lists, in one step: the names
   * removed, none when there was no such stack (a stack changing meanwhile is read again, a few times).
   */
  async removeStack(stack: string): Promise<string[]> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const names = await this.stackServices(stack);
      if (names.length === 0) return [];
      const keys = [
        this.keys.stacks(),
        this.keys.stack(stack),
        this.keys.removing(),
        ...names.map((name) => this.keys.service(serviceId(stack, name))),
      ];
      const removed = (await REMOVE_STACK.run(this.redis, [stack, this.keys.wakeChannel(), ...names], keys)) as number;
      if (removed >= 0) return removed === 0 ? [] : names;
    }
    throw new Error(`stack ${stack} kept changing while it was being removed`);
  }

  /** The ids of services being removed: the controller still has to take their replicas back. */
  async removingServices(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.removing())).sort();
  }

  /** The controller's fenced removal of a service marked removed (desired 0), with its assignments. */
  async removeService(change: ServiceRemoval): Promise<WriteOutcome> {
    const nodes = Object.keys(change.assignments);
    const id = change.serviceId;
    const keys = [
      this.keys.controller(),
      this.keys.controllerEpoch(),
      this.keys.service(id),
      this.keys.history(id),
      this.keys.revisions(id),
      this.keys.removing(),
      ...change.tracked.map(({ repository, tag }) => this.keys.trackers(repository, tag)),
      ...nodes.map((node) => this.keys.assignments(node)),
    ];
    const args = [change.holder, String(change.epoch), String(change.generation), id, String(change.tracked.length)];
    for (const node of nodes) args.push('0', String(change.assignments[node]!.length), ...change.assignments[node]!);
    args.push(this.keys.assignmentsChannel());
    return (await REMOVE_SERVICE.run(this.redis, args, keys)) as WriteOutcome;
  }

  async service(stack: string, name: string): Promise<ServiceRecord | undefined> {
    const fields = await this.redis.hgetall(this.keys.service(serviceId(stack, name)));
    if (fields.desired === undefined) return undefined;
    return {
      stack,
      name,
      desired: Number(fields.desired),
      state: fields.state ? (JSON.parse(fields.state) as ServiceState) : EMPTY_STATE,
      generation: Number(fields.generation ?? 0),
    };
  }

  async revision(id: string, number: number): Promise<Revision | undefined> {
    const text = await this.redis.hget(this.keys.revisions(id), String(number));
    return text === null ? undefined : { ...(JSON.parse(text) as Omit<Revision, 'number'>), number };
  }

  async revisions(id: string): Promise<Revision[]> {
    const fields = await this.redis.hgetall(this.keys.revisions(id));
    return Object.entries(fields)
      .filter(([field]) => field !== 'seq')
      .map(([field, text]) => ({ ...(JSON.parse(text) as Omit<Revision, 'number'>), number: Number(field) }))
      .sort((a, b) => b.number - a.number);
  }

  async history(id: string, limit: number): Promise<HistoryEntry[]> {
    return (await this.redis.lrange(this.keys.history(id), 0, limit - 1)).map((text) => JSON.parse(text) as HistoryEntry);
  }

  async trackers(repository: string, tag: string): Promise<string[]> {
    return this.redis.smembers(this.keys.trackers(repository, tag));
  }

  async isQuarantined(repository: string, tag: string, digest: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.quarantine(repository, tag), digest)) === 1;
  }

  async acquireController(holder: string, ttlMs: number): Promise<number | undefined> {
    const epoch = await ACQUIRE_LEASE.run(this.redis, [holder, ttlMs], [this.keys.controller(), this.keys.controllerEpoch()]);
    return typeof epoch === 'number' ? epoch : undefined;
  }

  async renewController(holder: string, epoch: number, ttlMs: number): Promise<boolean> {
    return (await RENEW_LEASE.run(this.redis, [holder, String(epoch), ttlMs], [this.keys.controller(), this.keys.controllerEpoch()])) === 1;
  }

  async releaseController(holder: string): Promise<void> {
    await RELEASE_LEASE.run(this.redis, [holder], [this.keys.controller()]);
  }

  async write(change: ControllerWrite): Promise<WriteOutcome> {
    const nodes = Object.keys(change.assignments);
    const quarantine = change.quarantine ?? { repository: '', tag: '', digest: '' };
    const keys = [
      this.keys.controller(),
      this.keys.controllerEpoch(),
      this.keys.service(change.serviceId),
      this.keys.history(change.serviceId),
      this.keys.quarantine(quarantine.repository, quarantine.tag),
      ...nodes.map((node) => this.keys.assignments(node)),
    ];
    const args: string[] = [change.holder, String(change.epoch), String(change.generation), JSON.stringify(change.state)];
    args.push(String(change.history.length), ...change.history.map((entry) => JSON.stringify(entry)), quarantine.digest);
    for (const node of nodes) {
      const entries = Object.entries(change.assignments[node]!);
      const sets = entries.filter(([, assignment]) => assignment !== null);
      const dels = entries.filter(([, assignment]) => assignment === null);
      args.push(String(sets.length), ...sets.flatMap(([replica, assignment]) => [replica, JSON.stringify(assignment)]));
      args.push(String(dels.length), ...dels.map(([replica]) => replica));
    }
    args.push(this.keys.assignmentsChannel());
    return (await CONTROLLER_WRITE.run(this.redis, args, keys)) as WriteOutcome;
  }

  async nodes(): Promise<NodeRecord[]> {
    const fields = await this.redis.hgetall(this.keys.nodes());
    return Object.values(fields)
      .map((text) => JSON.parse(text) as NodeRecord)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async node(name: string): Promise<NodeRecord | undefined> {
    const text = await this.redis.hget(this.keys.nodes(), name);
    return text === null ? undefined : (JSON.parse(text) as NodeRecord);
  }

  async putNode(node: NodeRecord): Promise<void> {
    await this.redis.hset(this.keys.nodes(), node.name, JSON.stringify(node));
  }

  async removeNode(name: string): Promise<boolean> {
    const removed = await this.redis.multi().hdel(this.keys.nodes(), name).zrem(this.keys.seen(), name).del(this.keys.reports(name)).exec();
    return removed?.[0]?.[1] === 1;
  }

  async heartbeat(name: string, now: number): Promise<void> {
    await this.redis.zadd(this.keys.seen(), now, name);
  }

  /** The node's last heartbeat (ms), if it ever sent one. */
  async seenAt(name: string): Promise<number | undefined> {
    const score = await this.redis.zscore(this.keys.seen(), name);
    return score === null ? undefined : Number(score);
  }

  /** Node name -> last heartbeat (ms). */
  async lastSeen(): Promise<Map<string, number>> {
    const flat = await this.redis.zrange(this.keys.seen(), 0, -1, 'WITHSCORES');
    const seen = new Map<string, number>();
    for (let index = 0; index < flat.length; index += 2) seen.set(flat[index]!, Number(flat[index + 1]));
    return seen;
  }

  async assignments(node: string): Promise<{ version: number; assignments: Assignment[] }> {
    const fields = await this.redis.hgetall(this.keys.assignments(node));
    const { version = '0', ...replicas } = fields;
    return {
      version: Number(version),
      assignments: Object.values(replicas)
        .map((text) => JSON.parse(text) as Assignment)
        .sort((a, b) => a.replica.localeCompare(b.replica)),
    };
  }

  /** How many replicas each of these nodes is assigned, over every service, in one round trip. */
  async assignmentCounts(nodes: string[]): Promise<Map<string, number>> {
    const pipeline = this.redis.pipeline();
    for (const node of nodes) pipeline.hlen(this.keys.assignments(node)).hexists(this.keys.assignments(node), 'version');
    const answers = ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return Number(value);
    });
    // The hash holds a `version` field beside one field per replica.
    return new Map(nodes.map((node, index) => [node, answers[2 * index]! - answers[2 * index + 1]!]));
  }

  async assignmentVersion(node: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.assignments(node), 'version')) ?? 0);
  }

  /** Replaces what the node reported about its replicas; wakes the controller when that changed anything. */
  async report(node: string, reports: ReplicaReport[]): Promise<void> {
    const fields = reports.flatMap((report) => [report.replica, JSON.stringify(report)]);
    await REPLACE_REPORTS.run(this.redis, [this.keys.wakeChannel(), ...fields], [this.keys.reports(node)]);
  }

  /** Every replica report of these nodes by replica, in one round trip. */
  async reports(nodes: string[]): Promise<Map<string, ReplicaReport>> {
    const pipeline = this.redis.pipeline();
    for (const node of nodes) pipeline.hgetall(this.keys.reports(node));
    const reports = new Map<string, ReplicaReport>();
    for (const [error, fields] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      for (const text of Object.values(fields as Record<string, string>)) {
        const report = JSON.parse(text) as ReplicaReport;
        reports.set(report.replica, report);
      }
    }
    return reports;
  }

  async addJoinToken(id: string, hash: string, expiresAt: number): Promise<void> {
    await this.redis.hset(this.keys.joinTokens(), id, JSON.stringify({ hash, expiresAt }));
  }

  async joinToken(id: string): Promise<{ hash: string; expiresAt: number } | undefined> {
    const text = await this.redis.hget(this.keys.joinTokens(), id);
    return text === null ? undefined : (JSON.parse(text) as { hash: string; expiresAt: number });
  }

  async wake(reason: string): Promise<void> {
    await this.redis.publish(this.keys.wakeChannel(), reason);
  }
}
