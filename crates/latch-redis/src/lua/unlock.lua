-- Release a lock only if it is still the caller's (its token), so a lock
-- that expired and was taken by another caller is never released by this one.
-- KEYS[1]  the lock
-- ARGV[1]  the caller's token
-- Returns  1 if released, 0 if it was not the caller's
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
