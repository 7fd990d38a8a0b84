-- list_rooms: ARGV prefix, limit, then the rooms allowed (none: any). The first `limit` rooms
-- without a password by id (byte order: the sorted set has every score 0, so Redis orders it
-- lexicographically), only allowed ones when some are named; the caller sorts those. Replies
-- {number of rooms that qualify, {room, member count, locked ('1'/'0'), room, ...}}.
local limit = tonumber(ARGV[2])
local out = {}
local function add(room)
  out[#out + 1] = room
  out[#out + 1] = redis.call('ZCARD', members_key(room))
  out[#out + 1] = redis.call('HGET', meta_key(room), 'locked') or '0'
end
if #ARGV > 2 then
  local total = 0
  for i = 3, #ARGV do
    if redis.call('ZSCORE', PUBLIC, ARGV[i]) then
      total = total + 1
      if total <= limit then add(ARGV[i]) end
    end
  end
  return {total, out}
end
if limit > 0 then
  for _, room in ipairs(redis.call('ZRANGE', PUBLIC, 0, limit - 1)) do add(room) end
end
return {redis.call('ZCARD', PUBLIC), out}
