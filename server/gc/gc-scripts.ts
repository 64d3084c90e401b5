import { deleteManifestScript } from '../metadata/redis-scripts.js';

/**
 * Lua for the garbage collector's changes, each atomic with the registry's own scripts (redis-scripts.ts).
 * Every destructive script re-checks, at the moment it runs, that the thing is still garbage: not marked,
 * not tagged, and not touched since the run's cutoff (its mark start minus the grace period). A push that
 * reaches Redis first stamps touchedAt and wins; one that comes after sees the deletion and fails cleanly.
 * The last argument of each is '1' for a dry run: the checks run and nothing changes.
 * Keys of the collector (besides the registry's, see redis-scripts.ts):
 *   <p>gc:mark         SET of blob digests named by a kept manifest
 *   <p>gc:live         SET of '<repo>@<digest>' manifests reachable from a tag (only when deleting untagged)
 *   <p>gc:queue        LIST of '<repo>@<digest>' manifests whose references are still to be followed
 *   <p>gc:doomed       SET of '<repo>@<digest>' a dry run would delete, so its blob marks skip them
 *   <p>gc:repo-mark    SET of blob digests named by the manifests of the repository whose links are swept
 *   <p>gc:tombstones   SET of blob digests in state 'deleting', so a collector can finish a dead one's work
 */

/** Older than the cutoff: the thing was last pushed, mounted, named or read before the run's cutoff. */
const STALE = `
local function stale(touchedAt, createdAt, cutoff)
  return tonumber(touchedAt or createdAt or '0') < cutoff
end
`;

/** ARGV: prefix, digest, cutoff, dryRun. The blob's size when it is (or, dry, would be) tombstoned, else false. */
export const tombstoneBlobScript = STALE + `
local p, digest, cutoff, dry = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local key = p .. 'b:' .. digest
local record = redis.call('HMGET', key, 'size', 'state', 'touchedAt', 'createdAt')
if not record[1] then return false end
if record[2] == 'deleting' then return record[1] end
if redis.call('SISMEMBER', p .. 'gc:mark', digest) == 1 then return false end
if not stale(record[3], record[4], cutoff) then return false end
if dry then return record[1] end
redis.call('HSET', key, 'state', 'deleting')
redis.call('SADD', p .. 'gc:tombstones', digest)
return record[1]
`;

/** ARGV: prefix, digest. Once the bytes are gone: drops the tombstoned record; its size, or false. */
export const finishBlobScript = `
local p, digest = ARGV[1], ARGV[2]
local key = p .. 'b:' .. digest
redis.call('SREM', p .. 'gc:tombstones', digest)
local record = redis.call('HMGET', key, 'size', 'state')
if record[2] ~= 'deleting' then return false end
redis.call('DEL', key)
return record[1]
`;

/**
 * ARGV: prefix, repository, digest, cutoff, dryRun. Deletes an untagged manifest that no push named since
 * the cutoff (an index PUT naming it stamps its touchedAt), with the registry's own manifest deletion.
 */
export const deleteUntaggedManifestScript = STALE + `
local gp, grepo, gdigest, cutoff, dry = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
if redis.call('SISMEMBER', gp .. 'r:' .. grepo .. ':m', gdigest) == 0 then return 0 end
if redis.call('SCARD', gp .. 'r:' .. grepo .. ':mtags:' .. gdigest) > 0 then return 0 end
if not stale(redis.call('HGET', gp .. 'm:' .. gdigest, 'touchedAt'), nil, cutoff) then return 0 end
if dry then
  redis.call('SADD', gp .. 'gc:doomed', grepo .. '@' .. gdigest)
  return 1
end
` + deleteManifestScript;

/**
 * ARGV: prefix, repository, digest, cutoff, dryRun. Drops a repository's link to a blob none of its
 * manifests names (gc:repo-mark) unless the blob was uploaded, mounted, named or read since the cutoff: a
 * manifest PUT that needs the link either stamps the blob first or finds the link gone.
 */
export const unlinkBlobScript = STALE + `
local p, repo, digest, cutoff, dry = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local links = p .. 'r:' .. repo .. ':b'
if redis.call('SISMEMBER', links, digest) == 0 then return 0 end
if redis.call('SISMEMBER', p .. 'gc:repo-mark', digest) == 1 then return 0 end
local record = redis.call('HMGET', p .. 'b:' .. digest, 'size', 'touchedAt', 'createdAt')
if record[1] and not stale(record[2], record[3], cutoff) then return 0 end
if dry then return 1 end
redis.call('SREM', links, digest)
return 1
`;

/** ARGV: session key, updatedAt as read. Deletes an expired upload session unless a chunk moved it since. */
export const expireUploadScript = `
if redis.call('HGET', ARGV[1], 'updatedAt') ~= ARGV[2] then return 0 end
return redis.call('DEL', ARGV[1])
`;
