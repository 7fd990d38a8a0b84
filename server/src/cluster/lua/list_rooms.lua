-- list_rooms: ARGV prefix, limit. The first `limit` rooms by id (byte order: the rooms sorted
-- set has every score 0, so Redis orders it lexicographically). Replies
-- {total number of rooms, {room, member count, locked ('1'/'0'), room, ...}}.
local limit = tonumber(ARGV[2])
local total = redis.call('ZCARD', ROOMS)
local out = {}
if limit > 0 then
  for _, room in ipairs(redis.call('ZRANGE', ROOMS, 0, limit - 1)) do
    out[#out + 1] = room
    out[#out + 1] = redis.call('ZCARD', members_key(room))
    out[#out + 1] = redis.call('HGET', meta_key(room), 'locked') or '0'
  end
end
return {total, out}
