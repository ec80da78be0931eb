-- A worker says it is alive and publishes its counters; workers silent for an hour are forgotten (both keys).
-- KEYS: 1 workers zset (worker -> last heartbeat ms), 2 worker info hash. ARGV: worker, now ms, info JSON ('' = none).
local now = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
return #gone
