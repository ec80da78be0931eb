-- Drop a shard's dead letters and skipped records past their retention (at most `limit` per kind and call), and
-- the named ones (the globally oldest beyond HOOKYARD_DEAD_LETTER_LIMIT, chosen by the caller across shards);
-- each drop is counted as `expired:<kind>:<handler>` in the shard stats.
-- KEYS: 1 dead zset, 2 skipped zset, 3 records hash, 4 shard stats hash.
-- ARGV: now ms, retention ms, limit, then members to drop, each as "<kind>|<member>".
-- Returns {"<kind>:<handler>", count, ..., "=dead", letters left, "=skipped", records left}.
local now, retention, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local zsets = {dead = KEYS[1], skipped = KEYS[2]}
local dropped = {}
local function handler_of(member)
  local record = redis.call('HGET', KEYS[3], member)
  if record then
    local ok, decoded = pcall(cjson.decode, record)
    if ok and type(decoded) == 'table' and type(decoded.handler) == 'string' then return decoded.handler end
  end
  return '?'
end
local function drop(kind, member)
  if redis.call('ZREM', zsets[kind], member) == 0 then return end
  local handler = handler_of(member)
  redis.call('HDEL', KEYS[3], member)
  redis.call('HINCRBY', KEYS[4], kind .. ':' .. handler, -1)
  redis.call('HINCRBY', KEYS[4], 'expired:' .. kind .. ':' .. handler, 1)
  local name = kind .. ':' .. handler
  dropped[name] = (dropped[name] or 0) + 1
end
for kind, zset in pairs(zsets) do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', zset, '-inf', now - retention, 'LIMIT', 0, limit)) do
    drop(kind, member)
  end
end
for i = 4, #ARGV do
  local kind, member = string.match(ARGV[i], '^(%a+)|(.+)$')
  if zsets[kind] then drop(kind, member) end
end
local out = {}
for name, n in pairs(dropped) do
  out[#out + 1] = name
  out[#out + 1] = n
end
out[#out + 1] = '=dead'
out[#out + 1] = redis.call('ZCARD', KEYS[1])
out[#out + 1] = '=skipped'
out[#out + 1] = redis.call('ZCARD', KEYS[2])
return out
