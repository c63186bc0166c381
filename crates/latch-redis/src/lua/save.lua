-- Compare-and-swap: replace the session only if its stored version is the expected one.
-- A missing key stays missing: a deleted or expired session is never brought back.
-- KEYS[1]  the session hash
-- ARGV     expected version, new version, record JSON, last_seen, expires_at,
--          TTL deadline [, user id]
-- Returns  {'gone'}, {'conflict'} or {'saved' [, previous user id]}
-- Both fields in one read; a missing one reads as false.
local stored = redis.call('HMGET', KEYS[1], 'ver', 'user')
local current, previous = stored[1], stored[2]
if not current then
  return {'gone'}
end
if current ~= ARGV[1] then
  return {'conflict'}
end
if ARGV[7] then
  redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'rec', ARGV[3], 'seen', ARGV[4], 'exp', ARGV[5], 'user', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'rec', ARGV[3], 'seen', ARGV[4], 'exp', ARGV[5])
  if previous then
    redis.call('HDEL', KEYS[1], 'user')
  end
end
redis.call('EXPIREAT', KEYS[1], ARGV[6])
if previous then
  return {'saved', previous}
end
return {'saved'}
