-- Delete a session, optionally only if it belongs to a given user (so a stale
-- entry in a user's index can never delete somebody else's session).
-- KEYS[1]  the session hash
-- ARGV     [user id the session must belong to]
-- Returns  {'gone'}, {'kept'} (another user's) or {'deleted' [, user id]}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'gone'}
end
local user = redis.call('HGET', KEYS[1], 'user')
if ARGV[1] and user ~= ARGV[1] then
  return {'kept'}
end
redis.call('DEL', KEYS[1])
if user then
  return {'deleted', user}
end
return {'deleted'}
