-- Extend the lease of a runner still working on the pair. Returns 1, or 0 if the lease was lost (another runner
-- owns the pair now; the holder's completion will be fenced).
-- Own ARGV: 1 pid, 2 token.
local pid, token = arg(1), arg(2)
if redis.call('HGET', K.pair, 'token') ~= token then
  return 0
end
redis.call('HSET', K.pair, 'lease_until', fmt(A.now + A.lease))
redis.call('ZADD', K.due, A.now + A.lease, pid)
return 1
