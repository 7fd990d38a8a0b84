-- heartbeat: ARGV prefix, instance, ttl in milliseconds. Refreshes the instance's alive key
-- and registers it (scored by the time of its last heartbeat).
local instance, ttl = ARGV[2], ARGV[3]
redis.call('SET', alive_key(instance), '1', 'PX', ttl)
redis.call('ZADD', INSTANCES, now_ms(), instance)
return {1}
