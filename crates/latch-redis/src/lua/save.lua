-- Compare-and-swap: replace the session only if its stored version is the expected one.
-- A missing key stays missing: a deleted or expired session is never brought back.
-- KEYS[1]  the session hash
-- ARGV     expected version, new version, record JSON, last_seen, expires_at,
--          TTL deadline, '1' to read the key again once written (else '0')
--          [, user id]
-- Returns  {'gone'}, {'conflict'}, or {'saved' [, previous user id]}, where
--          the tag is 'saved-sooner' instead when the new expires_at is earlier
--          than the stored one (the store then lowers the expiry-index entry).
-- The three fields in one read; a missing one reads as false.
local stored = redis.call('HMGET', KEYS[1], 'ver', 'user', 'exp')
local current, previous = stored[1], stored[2]
if not current then
  return {'gone'}
end
if current ~= ARGV[1] then
  return {'conflict'}
end
if ARGV[8] then
  redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'rec', ARGV[3], 'seen', ARGV[4], 'exp', ARGV[5], 'user', ARGV[8])
else
  redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'rec', ARGV[3], 'seen', ARGV[4], 'exp', ARGV[5])
  if previous then
    redis.call('HDEL', KEYS[1], 'user')
  end
end
redis.call('EXPIREAT', KEYS[1], ARGV[6])
if ARGV[7] == '1' then
  -- Sent by the read cache on its own connection (CLIENT TRACKING ... NOLOOP):
  -- the write above took the key out of that connection's tracking, and this
  -- read puts it back (Redis 7 tracks keys a script reads), so the next write
  -- by anyone else still pushes an invalidation. See cache.rs.
  redis.call('EXISTS', KEYS[1])
end
-- A hash without a readable 'exp' (not written by latch) counts as sooner.
local tag, old = 'saved', tonumber(stored[3])
if not old or tonumber(ARGV[5]) < old then
  tag = 'saved-sooner'
end
if previous then
  return {tag, previous}
end
return {tag}
