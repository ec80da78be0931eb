-- Find the shard's pairs that need a runner now (due, or whose runner's lease ran out) and reserve a wake-up
-- for each, so the workers sweeping concurrently do not all send one. KEYS[1] due zset.
-- ARGV: now, wake grace ms, limit, key prefix of the shard ("{hy:N}:"). Returns the pair ids to wake.
local now, grace, limit, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local pids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
local woken = {}
for _, pid in ipairs(pids) do
  local pair = prefix .. 'pair:' .. pid
  if redis.call('EXISTS', pair) == 1 then
    redis.call('ZADD', KEYS[1], now + grace, pid)
    redis.call('HSET', pair, 'woken_until', string.format('%.0f', now + grace))
    woken[#woken + 1] = pid
  else
    redis.call('ZREM', KEYS[1], pid)
  end
end
return woken
