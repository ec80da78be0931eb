-- Extend the lease of a runner still working on the pair. ARGV: pid, token, now, lease ms. Returns 1, or 0 if
-- the lease was lost (another runner owns the pair now; the holder's completion will be fenced).
local pid, token, now, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('HGET', K.pair, 'token') ~= token then
  return 0
end
redis.call('HSET', K.pair, 'lease_until', fmt(now + lease))
redis.call('ZADD', K.due, now + lease, pid)
return 1
