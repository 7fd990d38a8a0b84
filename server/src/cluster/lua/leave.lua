-- leave: ARGV prefix, client, room ('' for whichever). Replies {'unknown'},
-- {'not-in-room', current room or ''}, or {'left', room, who remains (flat)}.
local client = ARGV[2]
local _, refusal = own_room(client, ARGV[3])
if refusal then return refusal end
local room, remaining = leave_room(client)
return {'left', room, remaining}
