-- route: ARGV prefix, from, target. Replies {'unknown'} (sender unknown), {'not-in-room'},
-- {'target-not-in-room'}, or {'ok', target's instance, sender's user}.
local from = redis.call('HMGET', client_key(ARGV[2]), 'room', 'user')
if not from[2] then return {'unknown'} end
if not from[1] then return {'not-in-room'} end
local target = redis.call('HMGET', client_key(ARGV[3]), 'room', 'instance')
if target[1] ~= from[1] or not target[2] then return {'target-not-in-room'} end
return {'ok', target[2], from[2]}
