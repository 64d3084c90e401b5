/**
 * Lua scripts for every metadata change that touches several keys, so that each is atomic: a crash or a
 * concurrent request never sees a tag without its manifest or a manifest without its blobs.
 * Keys are built inside the scripts from ARGV[1] (the key prefix) and the repository name; repository names
 * cannot contain ':' so the key layout below is unambiguous:
 *   <p>repos                     ZSET (score 0) of repositories with at least one manifest, for _catalog
 *   <p>r:<repo>:tags             ZSET (score 0) of tags, for lexically paged listing
 *   <p>r:<repo>:tagmap           HASH tag -> manifest digest
 *   <p>r:<repo>:m                SET of manifest digests in the repository
 *   <p>r:<repo>:mtags:<digest>   SET of tags pointing at a manifest
 *   <p>r:<repo>:b                SET of blob digests linked to the repository
 *   <p>r:<repo>:ref:<subject>    HASH referrer digest -> descriptor JSON
 *   <p>m:<digest>                HASH mediaType, content, subject, descriptor, blobs, manifests
 *   <p>b:<digest>                HASH size, createdAt, touchedAt, state ('deleting' while garbage collection
 *                                removes the bytes: a tombstone every script treats as an absent blob)
 *   <p>u:<id>                    HASH upload session
 *   <p>lease:<name>              STRING lease token
 */

/**
 * Redis's clock in milliseconds as `now`. touchedAt stamps and the collector's cutoff both come from it, so
 * the grace period does not depend on the clocks of the replicas.
 */
export const NOW_MS = `
local clock = redis.call('TIME')
local now = string.format('%.0f', clock[1] * 1000 + math.floor(clock[2] / 1000))
`;

/** `usable(p, d)`: the blob has a record that is not a garbage collector's tombstone. */
const USABLE_BLOB = `
local function usable(p, d)
  local state = redis.call('HMGET', p .. 'b:' .. d, 'size', 'state')
  return state[1] ~= false and state[2] ~= 'deleting'
end
`;

// Stamping touchedAt on every blob and child manifest the new manifest names is what keeps the garbage
// collector from deleting them: it only removes what was last touched before its cutoff.
export const putManifestScript = NOW_MS + USABLE_BLOB + `
local p, repo, digest, mediaType, content = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local tag, subject, descriptor = ARGV[6], ARGV[7], ARGV[8]
local blobs, manifests = cjson.decode(ARGV[9]), cjson.decode(ARGV[10])
local rk = p .. 'r:' .. repo
for _, d in ipairs(blobs) do
  if redis.call('SISMEMBER', rk .. ':b', d) == 0 or not usable(p, d) then
    return {'missing', d}
  end
end
for _, d in ipairs(manifests) do
  if redis.call('SISMEMBER', rk .. ':m', d) == 0 then return {'missing', d} end
end
for _, d in ipairs(blobs) do redis.call('HSET', p .. 'b:' .. d, 'touchedAt', now) end
for _, d in ipairs(manifests) do redis.call('HSET', p .. 'm:' .. d, 'touchedAt', now) end
redis.call('HSET', p .. 'm:' .. digest, 'mediaType', mediaType, 'content', content, 'subject', subject,
  'descriptor', descriptor, 'blobs', ARGV[9], 'manifests', ARGV[10], 'touchedAt', now)
redis.call('SADD', rk .. ':m', digest)
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
  if fields[1] then return {'found', digest, fields[1], fields[2]} end
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

export const deleteManifestScript = `
local p, repo, digest = ARGV[1], ARGV[2], ARGV[3]
local rk = p .. 'r:' .. repo
if redis.call('SREM', rk .. ':m', digest) == 0 then return 0 end
for _, tag in ipairs(redis.call('SMEMBERS', rk .. ':mtags:' .. digest)) do
  redis.call('HDEL', rk .. ':tagmap', tag)
  redis.call('ZREM', rk .. ':tags', tag)
end
redis.call('DEL', rk .. ':mtags:' .. digest)
local subject = redis.call('HGET', p .. 'm:' .. digest, 'subject')
if subject and subject ~= '' then redis.call('HDEL', rk .. ':ref:' .. subject, digest) end
if redis.call('SCARD', rk .. ':m') == 0 then redis.call('ZREM', p .. 'repos', repo) end
return 1
`;

/**
 * Before an upload's bytes go to their content address: 'deleting' while the garbage collector removes that
 * digest (the caller waits, then writes the bytes anew), else 'existing' (stamped touchedAt, so no collector
 * starts deleting it now) or 'new'.
 */
export const prepareBlobCommitScript = NOW_MS + `
local key = ARGV[1] .. 'b:' .. ARGV[2]
local record = redis.call('HMGET', key, 'size', 'state')
if record[2] == 'deleting' then return 'deleting' end
if not record[1] then return 'new' end
redis.call('HSET', key, 'touchedAt', now)
return 'existing'
`;

// 'collected': the record the upload relied on (ARGV[7] = '1': it existed when the commit was prepared,
// so the store may have kept the old bytes instead of ours) was garbage collected meanwhile.
export const completeUploadScript = NOW_MS + `
local p, id, repo, digest, size, createdAt, expectExisting = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local key = p .. 'b:' .. digest
local record = redis.call('HMGET', key, 'size', 'state')
if record[2] == 'deleting' or (expectExisting == '1' and not record[1]) then return 'collected' end
if redis.call('DEL', p .. 'u:' .. id) == 0 then return 'unknown-upload' end
redis.call('HSET', key, 'size', size, 'touchedAt', now)
redis.call('HSETNX', key, 'createdAt', createdAt)
redis.call('SADD', p .. 'r:' .. repo .. ':b', digest)
return 'ok'
`;

export const mountBlobScript = NOW_MS + `
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
export const repositoryBlobSizeScript = NOW_MS + `
local p, repo, digest, resolution = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('SISMEMBER', p .. 'r:' .. repo .. ':b', digest) == 0 then return false end
local key = p .. 'b:' .. digest
local record = redis.call('HMGET', key, 'size', 'state', 'touchedAt')
if not record[1] or record[2] == 'deleting' then return false end
if resolution >= 0 and tonumber(record[3] or '0') < tonumber(now) - resolution then redis.call('HSET', key, 'touchedAt', now) end
return record[1]
`;

export const advanceUploadScript = `
local key, from, to, storeState, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', key, 'offset') ~= from then return 0 end
redis.call('HSET', key, 'offset', to, 'storeState', storeState, 'updatedAt', now)
return 1
`;

export const renewLeaseScript = `
if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('PEXPIRE', ARGV[1], ARGV[3]) end
return 0
`;

export const releaseLeaseScript = `
if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('DEL', ARGV[1]) end
return 0
`;
