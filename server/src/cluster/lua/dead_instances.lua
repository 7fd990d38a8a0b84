-- dead_instances: ARGV prefix. The registered instances whose alive key has expired.
local dead = {}
for _, instance in ipairs(redis.call('ZRANGE', INSTANCES, 0, -1)) do
  if redis.call('EXISTS', alive_key(instance)) == 0 then dead[#dead + 1] = instance end
end
return dead
