import { deleteManifestScript, FORGET_UPLOAD } from './redis-scripts.js';

/**
 * Lua for the garbage collector's changes, each atomic with the registry's own scripts (redis-scripts.ts).
 * Every destructive script re-checks, at the moment it runs, that the thing is still garbage: not marked,
 * not tagged, and not touched since the run's cutoff (its mark start minus the grace period). A push that
 * reaches Redis first stamps touchedAt and wins; one that comes after sees the deletion and fails cleanly.
 * Deletions take a batch of candidates (the trailing arguments) and check each one alone. A dryRun argument
 * of '1': the checks run and nothing changes.
 * The collector's keys (gc:*) are listed with all the others at the top of redis-scripts.ts.
 */

/** Older than the cutoff: the thing was last pushed, mounted, named or read before the run's cutoff. */
const STALE = `
local function stale(touchedAt, createdAt, cutoff)
  return tonumber(touchedAt or createdAt or '0') < cutoff
end
`;

/**
 * ARGV: prefix, cutoff, dryRun, digests... Each digest is checked on its own, exactly as if it ran alone:
 * one call per batch only saves the round trips and, with appendfsync always, the fsyncs. Per digest, in
 * order: its size when it is (or, dry, would be) tombstoned, else false.
 */
export const tombstoneBlobsScript =
  STALE +
  `
local p, cutoff, dry = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local function tombstone(digest)
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
end
local sizes = {}
for i = 4, #ARGV do sizes[i - 3] = tombstone(ARGV[i]) end
return sizes
`;

/** ARGV: prefix, digests... Once their bytes are gone: drops the tombstoned records; per digest its size, or false. */
export const finishBlobsScript = `
local p = ARGV[1]
local function finish(digest)
  local key = p .. 'b:' .. digest
  redis.call('SREM', p .. 'gc:tombstones', digest)
  local record = redis.call('HMGET', key, 'size', 'state')
  if record[2] ~= 'deleting' then return false end
  redis.call('DEL', key)
  return record[1]
end
local sizes = {}
for i = 2, #ARGV do sizes[i - 1] = finish(ARGV[i]) end
return sizes
`;

/**
 * ARGV: prefix, repository, cutoff, dryRun, digests... Deletes the untagged manifests that no push named
 * since the cutoff (an index PUT naming one stamps its touchedAt), each with the registry's own manifest
 * deletion (run as a function of its ARGV); how many it deleted (dry: would delete).
 */
export const deleteUntaggedManifestsScript =
  STALE +
  `
local gp, grepo, cutoff, dry = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local function deleteManifest(ARGV)
` +
  deleteManifestScript +
  `
end
local function deleteUntagged(gdigest)
  if redis.call('SISMEMBER', gp .. 'r:' .. grepo .. ':m', gdigest) == 0 then return 0 end
  if redis.call('SCARD', gp .. 'r:' .. grepo .. ':mtags:' .. gdigest) > 0 then return 0 end
  if not stale(redis.call('HGET', gp .. 'm:' .. gdigest, 'touchedAt'), nil, cutoff) then return 0 end
  if dry then
    redis.call('SADD', gp .. 'gc:doomed', grepo .. '@' .. gdigest)
    return 1
  end
  return deleteManifest({ gp, grepo, gdigest })
end
local deleted = 0
for i = 5, #ARGV do deleted = deleted + deleteUntagged(ARGV[i]) end
return deleted
`;

/**
 * ARGV: prefix, repository, cutoff, dryRun, digests... Drops a repository's links to blobs none of its
 * manifests names (gc:repo-mark) unless the blob was uploaded, mounted, named or read since the cutoff: a
 * manifest PUT that needs a link either stamps the blob first or finds the link gone. How many it dropped.
 */
export const unlinkBlobsScript =
  STALE +
  `
local p, repo, cutoff, dry = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local links = p .. 'r:' .. repo .. ':b'
local function unlink(digest)
  if redis.call('SISMEMBER', links, digest) == 0 then return 0 end
  if redis.call('SISMEMBER', p .. 'gc:repo-mark', digest) == 1 then return 0 end
  local record = redis.call('HMGET', p .. 'b:' .. digest, 'size', 'touchedAt', 'createdAt')
  if record[1] and not stale(record[2], record[3], cutoff) then return 0 end
  if dry then return 1 end
  redis.call('SREM', links, digest)
  return 1
end
local dropped = 0
for i = 5, #ARGV do dropped = dropped + unlink(ARGV[i]) end
return dropped
`;

/**
 * ARGV: prefix, cutoff, dryRun, digests... Deletes manifest records (m:<digest>) no repository linked when
 * the run marked (gc:manifest-mark) and no push wrote or named since the cutoff: records from before links
 * were counted, which their last unlink could not delete. A push that links one after the mark stamps its
 * touchedAt first; one that comes after the deletion writes the record anew. How many it deleted.
 */
export const deleteManifestRecordsScript =
  STALE +
  `
local p, cutoff, dry = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local function sweep(digest)
  if redis.call('SISMEMBER', p .. 'gc:manifest-mark', digest) == 1 then return 0 end
  local key = p .. 'm:' .. digest
  if not stale(redis.call('HGET', key, 'touchedAt'), nil, cutoff) then return 0 end
  if dry then return redis.call('EXISTS', key) end
  return redis.call('DEL', key)
end
local deleted = 0
for i = 4, #ARGV do deleted = deleted + sweep(ARGV[i]) end
return deleted
`;

/** ARGV: prefix, upload id, updatedAt as read. Deletes an expired upload session unless a chunk moved it since. */
export const expireUploadScript =
  FORGET_UPLOAD +
  `
if redis.call('HGET', ARGV[1] .. 'u:' .. ARGV[2], 'updatedAt') ~= ARGV[3] then return 0 end
return forgetUpload(ARGV[1], ARGV[2])
`;

/**
 * ARGV: prefix, dryRun, then digest and size pairs of bytes found in the store. Tombstones each digest that
 * has no record at all (bytes a crashed commit never recorded), so that a push racing the deletion sees the
 * blob as absent, exactly as for any other collected blob. Per digest: its size if tombstoned, else false.
 */
export const tombstoneOrphansScript = `
local p, dry = ARGV[1], ARGV[2] == '1'
local function tombstone(digest, size)
  local key = p .. 'b:' .. digest
  if redis.call('EXISTS', key) == 1 then return false end
  if dry then return size end
  redis.call('HSET', key, 'size', size, 'state', 'deleting')
  redis.call('SADD', p .. 'gc:tombstones', digest)
  return size
end
local sizes = {}
for i = 3, #ARGV, 2 do sizes[#sizes + 1] = tombstone(ARGV[i], ARGV[i + 1]) end
return sizes
`;
