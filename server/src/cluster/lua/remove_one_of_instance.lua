-- remove_one_of_instance: ARGV prefix, instance. Removes one client of a (dead) instance, so
-- that a big instance never blocks Redis for long and racing reapers each remove (and report)
-- a client exactly once. Replies the reply of `remove_client` in common.lua, {'skipped'} for a
-- listed client that was already gone, or {'done'} once the instance has no clients left, at
-- which point the instance is forgotten too.
local instance = ARGV[2]
local client = redis.call('SPOP', instance_clients_key(instance))
if not client then
  redis.call('ZREM', INSTANCES, instance)
  redis.call('DEL', alive_key(instance))
  return {'done'}
end
return remove_client(client) or {'skipped'}
