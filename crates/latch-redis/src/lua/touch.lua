-- Refresh last_seen and expires_at (and the TTL) of an existing session; the
-- record and its version are left alone.
-- KEYS[1]  the session hash
-- ARGV     last_seen, expires_at, TTL deadline
-- Returns  {'gone'} or {'touched' [, user id]}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'gone'}
end
local user = redis.call('HGET', KEYS[1], 'user')
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'exp', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
if user then
  return {'touched', user}
end
return {'touched'}
