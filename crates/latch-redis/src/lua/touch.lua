-- Refresh last_seen and expires_at (and the TTL) of an existing session; the
-- record and its version are left alone.
-- KEYS[1]  the session hash
-- ARGV     last_seen, expires_at, TTL deadline
-- Returns  {'gone'} or {'touched' [, user id]}
-- Every session has 'ver': reading it with 'user' tells both in one call.
local stored = redis.call('HMGET', KEYS[1], 'ver', 'user')
if not stored[1] then
  return {'gone'}
end
local user = stored[2]
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'exp', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
if user then
  return {'touched', user}
end
return {'touched'}
