-- File a session in a user's index (a sorted set of store keys scored by expires_at).
-- GT never lowers a score, so a score is never below its session's real expiry, and
-- the set's own TTL (its highest score) outlives every session filed in it.
-- KEYS[1]  the user index
-- ARGV     hex store key, expires_at
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], last[2])
return 1
