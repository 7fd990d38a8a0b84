-- Helpers shared by every script of the Redis room store (prepended to each one; see
-- store.rs for the data model). ARGV[1] is always the key prefix. Keys are built here rather
-- than passed in KEYS because a join touches rooms only known once the client's hash is read:
-- the store needs one Redis node (or one shard), never Redis Cluster.
local P = ARGV[1]
local ROOMS = P .. 'rooms'
-- The rooms without a password: those `rooms` may list.
local PUBLIC = P .. 'rooms:public'
local INSTANCES = P .. 'instances'

local function client_key(id) return P .. 'client:' .. id end
local function members_key(room) return P .. 'room:' .. room .. ':members' end
local function meta_key(room) return P .. 'room:' .. room .. ':meta' end
local function alive_key(instance) return P .. 'instance:' .. instance .. ':alive' end
local function instance_clients_key(instance) return P .. 'instance:' .. instance .. ':clients' end

-- Milliseconds of the Redis server's clock (one clock for every instance).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The members of `room`, oldest first, except `except`, as a flat list
-- {client, user, instance, client, user, instance, ...}.
local function members(room, except)
  local out = {}
  for _, c in ipairs(redis.call('ZRANGE', members_key(room), 0, -1)) do
    if c ~= except then
      local f = redis.call('HMGET', client_key(c), 'user', 'instance')
      out[#out + 1] = c
      out[#out + 1] = f[1] or ''
      out[#out + 1] = f[2] or ''
    end
  end
  return out
end

-- Whether a member of `room` other than `client` has `user` as its client id or user id, or has
-- `client` as its user id: letting `client` in as `user` would make two members look alike.
local function user_taken(room, client, user)
  for _, c in ipairs(redis.call('ZRANGE', members_key(room), 0, -1)) do
    if c ~= client then
      local theirs = redis.call('HGET', client_key(c), 'user')
      if c == user or theirs == user or theirs == client then return true end
    end
  end
  return false
end

-- Takes `client` out of its room, deleting the room when it empties. Returns the room left
-- ('' when in none) and who remains (flat, as `members`).
local function leave_room(client)
  local ck = client_key(client)
  local room = redis.call('HGET', ck, 'room')
  if not room then return '', {} end
  redis.call('HDEL', ck, 'room')
  local mk = members_key(room)
  redis.call('ZREM', mk, client)
  if redis.call('ZCARD', mk) == 0 then
    redis.call('DEL', mk, meta_key(room))
    redis.call('ZREM', ROOMS, room)
    redis.call('ZREM', PUBLIC, room)
    return room, {}
  end
  return room, members(room, nil)
end

-- Removes `client` entirely. Returns nil when it is unknown, else
-- {'removed', client, room left or '', remaining members (flat), user, instance}.
local function remove_client(client)
  local ck = client_key(client)
  local f = redis.call('HMGET', ck, 'user', 'instance')
  if not f[1] then return nil end
  local room, remaining = leave_room(client)
  redis.call('DEL', ck)
  if f[2] then redis.call('SREM', instance_clients_key(f[2]), client) end
  return {'removed', client, room, remaining, f[1], f[2] or ''}
end

-- The room `client` is in, checked against `named` ('' for any): {room} or a refusal reply.
local function own_room(client, named)
  local ck = client_key(client)
  if redis.call('EXISTS', ck) == 0 then return nil, {'unknown'} end
  local cur = redis.call('HGET', ck, 'room')
  if not cur then return nil, {'not-in-room', ''} end
  if named ~= '' and named ~= cur then return nil, {'not-in-room', cur} end
  return cur, nil
end

