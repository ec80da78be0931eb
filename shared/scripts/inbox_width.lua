-- Record how many inbox shards a receiver appends to; the width only grows, so ingesters never stop draining a
-- shard some receiver may still write to. KEYS[1] width. ARGV[1] shards. Returns the width.
local width = tonumber(redis.call('GET', KEYS[1]) or '0')
local shards = tonumber(ARGV[1])
if shards > width then
  redis.call('SET', KEYS[1], shards)
  return shards
end
return width
