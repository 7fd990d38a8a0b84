-- set_locked: ARGV prefix, client, room ('' for whichever), '1' to lock or '0' to unlock.
-- Replies {'unknown'}, {'not-in-room', current room or ''}, or {'ok', room, all members (flat)}.
local client = ARGV[2]
local room, refusal = own_room(client, ARGV[3])
if refusal then return refusal end
redis.call('HSET', meta_key(room), 'locked', ARGV[4])
return {'ok', room, members(room, nil)}
