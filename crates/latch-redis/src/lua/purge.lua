-- Delete a session if it expired at or before `now`.
-- KEYS[1]  the session hash
-- ARGV     now
-- Returns  {'gone'} (already removed, e.g. by its TTL), {'live', expires_at}
--          or {'purged' [, user id]}
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp then
  return {'gone'}
end
if tonumber(exp) > tonumber(ARGV[1]) then
  return {'live', exp}
end
local user = redis.call('HGET', KEYS[1], 'user')
redis.call('DEL', KEYS[1])
if user then
  return {'purged', user}
end
return {'purged'}
