-- The read cache's check that this server keeps tracking a key that a script
-- wrote and then read (what a cached save relies on; see cache.rs).
-- KEYS[1]  a throwaway key under the store's prefix
-- Returns  1
redis.call('SET', KEYS[1], '1', 'PX', 60000)
return redis.call('EXISTS', KEYS[1])
