-- Refresh last_seen and expires_at (and the TTL) of an existing session; the
-- record and its version are left alone.
-- KEYS[1]  the session hash
-- ARGV     last_seen, expires_at, TTL deadline
-- Returns  {'gone'} or {'touched' [, user id]}, where the tag is
--          'touched-sooner' instead when the new expires_at is earlier than
--          the stored one (the store then lowers the expiry-index entry).
-- Every session has 'ver': reading it with 'user' and 'exp' tells all in one call.
local stored = redis.call('HMGET', KEYS[1], 'ver', 'user', 'exp')
if not stored[1] then
  return {'gone'}
end
local user = stored[2]
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'exp', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
local tag, old = 'touched', tonumber(stored[3])
if not old or tonumber(ARGV[2]) < old then
  tag = 'touched-sooner'
end
if user then
  return {tag, user}
end
return {tag}
