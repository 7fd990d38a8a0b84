-- add_client: ARGV prefix, client, user, instance. Registers a connected client of an
-- instance (and the instance, so that its death is noticed even before its first heartbeat).
-- Returns {1}, or {0} when the id is taken (nothing changed).
local client, user, instance = ARGV[2], ARGV[3], ARGV[4]
local ck = client_key(client)
if redis.call('EXISTS', ck) == 1 then return {0} end
redis.call('HSET', ck, 'instance', instance, 'user', user)
redis.call('SADD', instance_clients_key(instance), client)
redis.call('ZADD', INSTANCES, 'NX', now_ms(), instance)
return {1}
