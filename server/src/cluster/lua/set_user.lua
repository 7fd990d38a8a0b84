-- set_user: ARGV prefix, client, user. Returns {1}; {0} for an unknown client; {2} when another
-- member of the client's room has `user` as its client id or user id (nothing changed).
local client, user = ARGV[2], ARGV[3]
local ck = client_key(client)
if redis.call('EXISTS', ck) == 0 then return {0} end
local room = redis.call('HGET', ck, 'room')
if room and user_taken(room, client, user) then return {2} end
redis.call('HSET', ck, 'user', user)
return {1}
