-- Create a session only if its key is free: an existing session is never overwritten.
-- KEYS[1]  the session hash
-- ARGV     version, record JSON, last_seen, expires_at, TTL deadline [, user id]
-- Returns  1 when created, 0 when the key was taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- One HSET either way: each redis.call costs the server a command's overhead.
if ARGV[6] then
  redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'rec', ARGV[2], 'seen', ARGV[3], 'exp', ARGV[4], 'user', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'rec', ARGV[2], 'seen', ARGV[3], 'exp', ARGV[4])
end
-- A deadline already in the past deletes the key at once: such a session is never live.
redis.call('EXPIREAT', KEYS[1], ARGV[5])
return 1
