-- Drop a shard's dead letters and skipped records past their retention, then the oldest beyond the bound, at
-- most `limit` per kind and call; each drop is counted as `expired:<kind>:<handler>` in the shard stats.
-- KEYS: 1 dead zset, 2 skipped zset, 3 records hash, 4 shard stats hash.
-- ARGV: now ms, retention ms, bound per kind, limit. Returns {"<kind>:<handler>", count, ...}.
local now, retention, bound, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local dropped = {}
local function handler_of(member)
  local record = redis.call('HGET', KEYS[3], member)
  if record then
    local ok, decoded = pcall(cjson.decode, record)
    if ok and type(decoded) == 'table' and type(decoded.handler) == 'string' then return decoded.handler end
  end
  return '?'
end
local function drop(kind, zset, members)
  for _, member in ipairs(members) do
    local handler = handler_of(member)
    redis.call('ZREM', zset, member)
    redis.call('HDEL', KEYS[3], member)
    redis.call('HINCRBY', KEYS[4], kind .. ':' .. handler, -1)
    redis.call('HINCRBY', KEYS[4], 'expired:' .. kind .. ':' .. handler, 1)
    local name = kind .. ':' .. handler
    dropped[name] = (dropped[name] or 0) + 1
  end
end
for _, kind in ipairs({'dead', 'skipped'}) do
  local zset = kind == 'dead' and KEYS[1] or KEYS[2]
  drop(kind, zset, redis.call('ZRANGEBYSCORE', zset, '-inf', now - retention, 'LIMIT', 0, limit))
  local over = redis.call('ZCARD', zset) - bound
  if over > 0 then
    drop(kind, zset, redis.call('ZRANGE', zset, 0, math.min(over, limit) - 1))
  end
end
local out = {}
for name, n in pairs(dropped) do
  out[#out + 1] = name
  out[#out + 1] = n
end
return out
