-- members_of: ARGV prefix, client. Where a broadcast goes. Replies {'unknown'},
-- {'not-in-room', ''}, or {'ok', room, sender's user, the other members (flat)}.
local client = ARGV[2]
local room, refusal = own_room(client, '')
if refusal then return refusal end
local user = redis.call('HGET', client_key(client), 'user')
return {'ok', room, user, members(room, client)}
