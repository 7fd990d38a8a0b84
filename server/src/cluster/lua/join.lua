-- join: ARGV prefix, client, room, password digest ('' for none), max members, max rooms,
-- whether user ids must be distinct in a room ('1') or not ('0': tokens fix them).
-- The rules of rooms.rs, in one atomic step: every check happens before the client leaves its
-- current room, so a refused join changes nothing. Replies:
--   {'unknown'}
--   {'already', others (flat)}
--   {'refused', reason}   reason: password-required, bad-password, locked, full, user-taken,
--                         too-many-rooms
--   {'joined', others before the joiner (flat), room left or '', who remains there (flat)}
local client, room, pw = ARGV[2], ARGV[3], ARGV[4]
local max_members, max_rooms = tonumber(ARGV[5]), tonumber(ARGV[6])
local ck = client_key(client)
if redis.call('EXISTS', ck) == 0 then return {'unknown'} end
local cur = redis.call('HGET', ck, 'room')
if cur == room then return {'already', members(room, client)} end

local mk = members_key(room)
local count = redis.call('ZCARD', mk)
if count > 0 then
  local meta = redis.call('HMGET', meta_key(room), 'pw', 'locked')
  if meta[1] and meta[1] ~= pw then
    if pw == '' then return {'refused', 'password-required'} end
    return {'refused', 'bad-password'}
  end
  if meta[2] == '1' then return {'refused', 'locked'} end
  if count >= max_members then return {'refused', 'full'} end
  -- Checked last: only someone who may enter learns who is inside.
  if ARGV[7] == '1' and user_taken(room, client, redis.call('HGET', ck, 'user')) then
    return {'refused', 'user-taken'}
  end
else
  -- A room the client leaves alone is deleted, which frees a slot for the new one.
  local frees = cur and redis.call('ZCARD', members_key(cur)) == 1
  local after = redis.call('ZCARD', ROOMS) + 1
  if frees then after = after - 1 end
  if after > max_rooms then return {'refused', 'too-many-rooms'} end
end

local left_room, remaining = leave_room(client)
if count == 0 then
  redis.call('ZADD', ROOMS, 0, room)
  redis.call('HSET', meta_key(room), 'locked', '0', 'created', now_ms())
  -- The creator sets the password; later joiners' passwords never change it.
  if pw ~= '' then
    redis.call('HSET', meta_key(room), 'pw', pw)
  else
    redis.call('ZADD', PUBLIC, 0, room)
  end
end
local others = members(room, client)
redis.call('ZADD', mk, redis.call('INCR', P .. 'seq'), client)
redis.call('HSET', ck, 'room', room)
return {'joined', others, left_room, remaining}
