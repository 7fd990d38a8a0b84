-- set_user: ARGV prefix, client, user. Returns {1}, or {0} for an unknown client.
local ck = client_key(ARGV[2])
if redis.call('EXISTS', ck) == 0 then return {0} end
redis.call('HSET', ck, 'user', ARGV[3])
return {1}
