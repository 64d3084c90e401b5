/**
 * Lua scripts for every metadata change that touches several keys, so that each is atomic: a crash or a
 * concurrent request never sees a tag without its manifest or a manifest without its blobs.
 * Keys are built inside the scripts from ARGV[1] (the key prefix) and the repository name, and in TypeScript
 * by keys.ts alone. This is the registry's whole key layout (every key starts with the configured
 * `redis.keyPrefix`, <p>); repository names cannot contain ':' so it is unambiguous:
 *   <p>repos                     ZSET (score 0) of repositories with at least one manifest, for _catalog
 *   <p>r:<repo>:tags             ZSET (score 0) of tags, for lexically paged listing
 *   <p>r:<repo>:tagmap           HASH tag -> manifest digest
 *   <p>r:<repo>:m                SET of manifest digests in the repository
 *   <p>r:<repo>:mtags:<digest>   SET of tags pointing at a manifest
 *   <p>r:<repo>:b                SET of blob digests linked to the repository
 *   <p>r:<repo>:ref:<subject>    HASH referrer digest -> descriptor JSON
 *   <p>r:<repo>:mt               HASH manifest digest -> media type, for manifests whose body has no
 *                                mediaType (the push's Content-Type chose it, per repository)
 *   <p>m:<digest>                HASH mediaType, content, subject, descriptor, blobs, manifests, touchedAt,
 *                                links (how many repositories link it; deleted with the last one)
 *   <p>b:<digest>                HASH size, createdAt, touchedAt, state ('deleting' while garbage collection
 *                                removes the bytes: a tombstone every script treats as an absent blob)
 *   <p>u:<id>                    HASH upload session (repository, owner, offset, storeState, startedAt,
 *                                updatedAt), with a TTL when abandoned uploads expire
 *   <p>uo:r:<repo>               ZSET open upload ids of a repository, scored by when their session expires
 *   <p>uo:a:<owner>              ZSET open upload ids of an owner (an account, or an address), likewise
 *   <p>lease:<name>              STRING lease holder (see lease-holder.ts); names in metadata-store.ts
 * The garbage collector's (gc-scripts.ts):
 *   <p>gc:mark                   SET of blob digests named by a kept manifest
 *   <p>gc:live                   SET of '<repo>@<digest>' manifests reachable from a tag (only when deleting untagged)
 *   <p>gc:queue                  LIST of '<repo>@<digest>' manifests whose references are still to be followed
 *   <p>gc:doomed                 SET of '<repo>@<digest>' a dry run would delete, so its blob marks skip them
 *   <p>gc:repo-mark              SET of blob digests named by the manifests of the repository whose links are swept
 *   <p>gc:manifest-mark          SET of manifest digests some repository links
 *   <p>gc:tombstones             SET of blob digests in state 'deleting', so a collector can finish a dead one's work
 * Auth (server/auth/):
 *   <p>auth:users                HASH user name -> account JSON (password hash, groups, admin)
 *   <p>auth:robots               HASH robot name -> robot JSON (secret hash, groups, expiry)
 *   <p>auth:robots:last-used     HASH robot name -> ISO time of its last login
 *   <p>auth:rules                HASH rule id -> permission rule JSON
 *   <p>auth:generations          HASH subject (user:<name>, robot:<name>, group:<name>, anonymous) -> generation,
 *                                bumped to revoke the tokens issued before (revocation.ts)
 *   <p>auth:failures:account:<a> STRING failed logins of an account in the current window (with its TTL)
 *   <p>auth:failures:address:<a> STRING failed logins from a client address, likewise
 * Webhooks (server/webhooks/queue.ts):
 *   <p>webhooks:queue:<endpoint>    LIST events waiting for delivery to the endpoint, oldest first
 *   <p>webhooks:attempts:<endpoint> HASH event id -> delivery attempts so far
 *   <p>webhooks:dead:<endpoint>     LIST events given up on, until redelivered
 *   <p>webhooks:log                 LIST the latest delivery outcomes, newest first, capped
 * Maintenance:
 *   <p>maintenance:read-only     STRING '1' while switched to read-only through the admin API
 * High availability:
 *   <p>durable-ack               STRING a counter written before each WAIT of durable acknowledgement
 */

/**
 * Redis's clock in milliseconds as `now`. touchedAt stamps and the collector's cutoff both come from it, so
 * the grace period does not depend on the clocks of the replicas.
 */
export const NOW_MS = `
local clock = redis.call('TIME')
local now = string.format('%.0f', clock[1] * 1000 + math.floor(clock[2] / 1000))
`;

// Stamping touchedAt on every blob and child manifest the new manifest names is what keeps the garbage
// collector from deleting them: it only removes what was last touched before its cutoff.
// ARGV[9], ARGV[10]: the digests of blobs and child manifests, stored for the collector; ARGV[11], ARGV[12]:
// the same as [digest, declared size] pairs, each checked against the stored blob or manifest.
// Links are counted in the record ('links': the repositories whose manifest set holds it) so that the last
// deletion can take the record with it. A record written before links were counted has no count (nobody
// knows how many repositories link it): it is never counted and only the collector's sweep deletes it.
export const putManifestScript =
  NOW_MS +
  `
local p, repo, digest, mediaType, content = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local tag, subject, descriptor = ARGV[6], ARGV[7], ARGV[8]
local blobs, manifests, declared = cjson.decode(ARGV[11]), cjson.decode(ARGV[12]), ARGV[13] == '1'
local rk = p .. 'r:' .. repo
for _, ref in ipairs(blobs) do
  if redis.call('SISMEMBER', rk .. ':b', ref[1]) == 0 then return {'missing', ref[1]} end
  local record = redis.call('HMGET', p .. 'b:' .. ref[1], 'size', 'state')
  if not record[1] or record[2] == 'deleting' then return {'missing', ref[1]} end
  if record[1] ~= ref[2] then return {'size-mismatch', ref[1], ref[2], record[1]} end
end
for _, ref in ipairs(manifests) do
  if redis.call('SISMEMBER', rk .. ':m', ref[1]) == 0 then return {'missing', ref[1]} end
  local size = redis.call('HSTRLEN', p .. 'm:' .. ref[1], 'content')
  if size ~= tonumber(ref[2]) then return {'size-mismatch', ref[1], ref[2], tostring(size)} end
end
for _, ref in ipairs(blobs) do redis.call('HSET', p .. 'b:' .. ref[1], 'touchedAt', now) end
for _, ref in ipairs(manifests) do redis.call('HSET', p .. 'm:' .. ref[1], 'touchedAt', now) end
local mk = p .. 'm:' .. digest
local existed = redis.call('EXISTS', mk) == 1
redis.call('HSET', mk, 'content', content, 'subject', subject, 'descriptor', descriptor, 'blobs', ARGV[9],
  'manifests', ARGV[10], 'touchedAt', now)
if declared then
  redis.call('HSET', mk, 'mediaType', mediaType)
else
  -- The Content-Type chose the type: it holds for this repository only (r:<repo>:mt); the record keeps the
  -- first one, which a repository pushed before types were kept per repository still reads.
  redis.call('HSETNX', mk, 'mediaType', mediaType)
  redis.call('HSET', rk .. ':mt', digest, mediaType)
end
if redis.call('SADD', rk .. ':m', digest) == 1 then
  if not existed then redis.call('HSET', mk, 'links', 1)
  elseif redis.call('HEXISTS', mk, 'links') == 1 then redis.call('HINCRBY', mk, 'links', 1) end
end
redis.call('ZADD', p .. 'repos', 0, repo)
if subject ~= '' then redis.call('HSET', rk .. ':ref:' .. subject, digest, descriptor) end
if tag ~= '' then
  local previous = redis.call('HGET', rk .. ':tagmap', tag)
  if previous and previous ~= digest then redis.call('SREM', rk .. ':mtags:' .. previous, tag) end
  redis.call('HSET', rk .. ':tagmap', tag, digest)
  redis.call('ZADD', rk .. ':tags', 0, tag)
  redis.call('SADD', rk .. ':mtags:' .. digest, tag)
end
return {'ok'}
`;

export const getManifestScript = `
local p, repo, reference, byDigest = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rk = p .. 'r:' .. repo
local digest = reference
if byDigest == '1' then
  if redis.call('SISMEMBER', rk .. ':m', digest) == 0 then digest = false end
else
  digest = redis.call('HGET', rk .. ':tagmap', reference)
end
if digest then
  local fields = redis.call('HMGET', p .. 'm:' .. digest, 'mediaType', 'content')
  if fields[1] then return {'found', digest, redis.call('HGET', rk .. ':mt', digest) or fields[1], fields[2]} end
end
if redis.call('ZSCORE', p .. 'repos', repo) then return {'unknown-manifest'} end
return {'unknown-repository'}
`;

export const deleteTagScript = `
local p, repo, tag = ARGV[1], ARGV[2], ARGV[3]
local rk = p .. 'r:' .. repo
local digest = redis.call('HGET', rk .. ':tagmap', tag)
if not digest then return 0 end
redis.call('HDEL', rk .. ':tagmap', tag)
redis.call('ZREM', rk .. ':tags', tag)
redis.call('SREM', rk .. ':mtags:' .. digest, tag)
return 1
`;

// The unlink and the record's deletion are one step: a push of the same manifest (another script) comes
// wholly before it (its link is counted, the record stays) or wholly after it (it writes the record anew).
export const deleteManifestScript = `
local p, repo, digest = ARGV[1], ARGV[2], ARGV[3]
local rk = p .. 'r:' .. repo
if redis.call('SREM', rk .. ':m', digest) == 0 then return 0 end
for _, tag in ipairs(redis.call('SMEMBERS', rk .. ':mtags:' .. digest)) do
  redis.call('HDEL', rk .. ':tagmap', tag)
  redis.call('ZREM', rk .. ':tags', tag)
end
redis.call('DEL', rk .. ':mtags:' .. digest)
redis.call('HDEL', rk .. ':mt', digest)
local mk = p .. 'm:' .. digest
local subject = redis.call('HGET', mk, 'subject')
if subject and subject ~= '' then redis.call('HDEL', rk .. ':ref:' .. subject, digest) end
if redis.call('SCARD', rk .. ':m') == 0 then redis.call('ZREM', p .. 'repos', repo) end
if redis.call('HEXISTS', mk, 'links') == 1 and redis.call('HINCRBY', mk, 'links', -1) <= 0 then redis.call('DEL', mk) end
return 1
`;

/**
 * Before an upload's bytes go to their content address. ARGV: prefix, digest, the upload's lease key, its
 * holder, its TTL. 'lease-lost' when the lease is not held by that holder (nothing else done); otherwise the
 * lease is renewed, then: 'deleting' while the garbage collector removes that digest (the caller waits, then
 * writes the bytes anew), else 'existing' (stamped touchedAt, so no collector starts deleting it now) or 'new'.
 */
export const prepareBlobCommitScript =
  NOW_MS +
  `
if redis.call('GET', ARGV[3]) ~= ARGV[4] then return 'lease-lost' end
redis.call('PEXPIRE', ARGV[3], ARGV[5])
local key = ARGV[1] .. 'b:' .. ARGV[2]
local record = redis.call('HMGET', key, 'size', 'state')
if record[2] == 'deleting' then return 'deleting' end
if not record[1] then return 'new' end
redis.call('HSET', key, 'touchedAt', now)
return 'existing'
`;

/**
 * `forgetUpload(p, id)`: deletes the session and drops it from its repository's and owner's open uploads;
 * 0 when there was no session.
 */
export const FORGET_UPLOAD = `
local function forgetUpload(p, id)
  local session = redis.call('HMGET', p .. 'u:' .. id, 'repository', 'owner')
  if redis.call('DEL', p .. 'u:' .. id) == 0 then return 0 end
  if session[1] then redis.call('ZREM', p .. 'uo:r:' .. session[1], id) end
  if session[2] then redis.call('ZREM', p .. 'uo:a:' .. session[2], id) end
  return 1
end
`;

/** `keepOpen(p, repo, owner, id, ttl)`: (re)starts the session's TTL and its entries in the open uploads. */
const KEEP_UPLOAD_OPEN = `
local function keepOpen(p, repo, owner, id, ttl)
  local expiresAt = '+inf'
  if tonumber(ttl) > 0 then
    redis.call('PEXPIRE', p .. 'u:' .. id, ttl)
    expiresAt = tonumber(now) + tonumber(ttl)
  end
  for _, key in ipairs({ p .. 'uo:r:' .. repo, p .. 'uo:a:' .. owner }) do
    redis.call('ZADD', key, expiresAt, id)
    if tonumber(ttl) > 0 then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end
  end
end
`;

/**
 * ARGV: prefix, id, repository, owner, storeState, startedAt, ttlMs (0: none), maxPerRepository,
 * maxPerOwner. Opens an upload session unless its repository or owner already has its maximum of open
 * ones (expired sessions no longer count): 'ok', 'repository-full' or 'owner-full'.
 */
export const createUploadScript =
  NOW_MS +
  KEEP_UPLOAD_OPEN +
  `
local p, id, repo, owner, storeState, startedAt, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local repoKey, ownerKey = p .. 'uo:r:' .. repo, p .. 'uo:a:' .. owner
redis.call('ZREMRANGEBYSCORE', repoKey, '-inf', now)
redis.call('ZREMRANGEBYSCORE', ownerKey, '-inf', now)
if redis.call('ZCARD', repoKey) >= tonumber(ARGV[8]) then return 'repository-full' end
if redis.call('ZCARD', ownerKey) >= tonumber(ARGV[9]) then return 'owner-full' end
redis.call('HSET', p .. 'u:' .. id, 'repository', repo, 'owner', owner, 'offset', 0, 'storeState', storeState, 'startedAt', startedAt, 'updatedAt', startedAt)
keepOpen(p, repo, owner, id, ttl)
return 'ok'
`;

/** ARGV: prefix, id. Ends an upload session (cancelled or failed). */
export const deleteUploadScript =
  FORGET_UPLOAD +
  `
return forgetUpload(ARGV[1], ARGV[2])
`;

/**
 * `releaseLease(key, holder)`: frees a lease if `holder` still has it; a key of '' names none. A request's
 * last write releases its lease in the same step, so the client's next request finds it free (one Redis
 * log fsync per request instead of two).
 */
const RELEASE_LEASE = `
local function releaseLease(key, holder)
  if key ~= '' and redis.call('GET', key) == holder then redis.call('DEL', key) end
end
`;

// ARGV: prefix, id, repository, digest, size, createdAt, expectExisting, lease key ('' none), lease holder.
// 'collected': the record the upload relied on (expectExisting = '1': it existed when the commit was prepared,
// so the store may have kept the old bytes instead of ours) was garbage collected meanwhile; the lease is then
// kept (the caller goes on with the upload's own bytes), else released with the session's end.
export const completeUploadScript =
  NOW_MS +
  FORGET_UPLOAD +
  RELEASE_LEASE +
  `
local p, id, repo, digest, size, createdAt, expectExisting = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local key = p .. 'b:' .. digest
local record = redis.call('HMGET', key, 'size', 'state')
if record[2] == 'deleting' or (expectExisting == '1' and not record[1]) then return 'collected' end
releaseLease(ARGV[8], ARGV[9])
if forgetUpload(p, id) == 0 then return 'unknown-upload' end
redis.call('HSET', key, 'size', size, 'touchedAt', now)
redis.call('HSETNX', key, 'createdAt', createdAt)
redis.call('SADD', p .. 'r:' .. repo .. ':b', digest)
return 'ok'
`;

export const mountBlobScript =
  NOW_MS +
  `
local p, from, to, digest = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('SISMEMBER', p .. 'r:' .. from .. ':b', digest) == 0 then return false end
local record = redis.call('HMGET', p .. 'b:' .. digest, 'size', 'state')
if not record[1] or record[2] == 'deleting' then return false end
redis.call('SADD', p .. 'r:' .. to .. ':b', digest)
redis.call('HSET', p .. 'b:' .. digest, 'touchedAt', now)
return record[1]
`;

// HEAD and GET of a blob: its size if the repository may see it. touchedAt is rewritten only when older
// than ARGV[4] ms, so a hot blob costs one write per interval instead of one per request; a resolution of
// -1 never writes (the lookup of a Redis that refuses writes).
export const repositoryBlobSizeScript =
  NOW_MS +
  `
local p, repo, digest, resolution = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('SISMEMBER', p .. 'r:' .. repo .. ':b', digest) == 0 then return false end
local key = p .. 'b:' .. digest
local record = redis.call('HMGET', key, 'size', 'state', 'touchedAt')
if not record[1] or record[2] == 'deleting' then return false end
if resolution >= 0 and tonumber(record[3] or '0') < tonumber(now) - resolution then redis.call('HSET', key, 'touchedAt', now) end
return record[1]
`;

/**
 * ARGV: prefix, repository, start (a ZRANGEBYLEX bound), count. A page of the repository's tags in one round
 * trip; false when no manifest ever made the repository known.
 */
export const tagPageScript = `
local p, repo, start, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if not redis.call('ZSCORE', p .. 'repos', repo) then return false end
if count == 0 then return {} end
return redis.call('ZRANGEBYLEX', p .. 'r:' .. repo .. ':tags', start, '+', 'LIMIT', 0, count)
`;

/**
 * ARGV: prefix, id, from, to, storeState, updatedAt, ttlMs (0: none), lease key ('' none), lease holder. A
 * chunk moves the offset and restarts the TTL (1), unless another request moved it first (0); either way the
 * lease named is released, as the request ends with this write.
 */
export const advanceUploadScript =
  NOW_MS +
  KEEP_UPLOAD_OPEN +
  RELEASE_LEASE +
  `
local p, id, from, to, storeState, updatedAt, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
releaseLease(ARGV[8], ARGV[9])
local key = p .. 'u:' .. id
local session = redis.call('HMGET', key, 'offset', 'repository', 'owner')
if session[1] ~= from then return 0 end
redis.call('HSET', key, 'offset', to, 'storeState', storeState, 'updatedAt', updatedAt)
keepOpen(p, session[2], session[3] or '', id, ttl)
return 1
`;

/**
 * ARGV: prefix, lease key, holder, ttl, upload id. Claims an upload's lease and reads its session in one
 * trip: {1, session fields} when claimed, {0, session fields, current holder} when someone holds it.
 */
export const claimUploadScript = `
local claimed = redis.call('SET', ARGV[2], ARGV[3], 'PX', ARGV[4], 'NX')
local session = redis.call('HGETALL', ARGV[1] .. 'u:' .. ARGV[5])
if claimed then return {1, session} end
return {0, session, redis.call('GET', ARGV[2]) or ''}
`;

export const renewLeaseScript = `
if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('PEXPIRE', ARGV[1], ARGV[3]) end
return 0
`;

export const releaseLeaseScript = `
if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('DEL', ARGV[1]) end
return 0
`;

/** ARGV: key, the dead holder seen, the new holder, ttl. Takes the lease only if that holder still has it. */
export const takeOverLeaseScript = `
if redis.call('GET', ARGV[1]) == ARGV[2] then
  redis.call('SET', ARGV[1], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
`;
