-- Record that the lease holder finished the head event: pop it, move the delivered position, free the pair
-- and re-arm it for the next event. A holder whose lease was taken over is refused ('fenced').
-- KEYS[6] skipped zset, KEYS[7] records hash (used when outcome = 'skipped').
-- ARGV: pid, token, event id, now, window ms, wake grace ms, idle ttl ms, late (0/1), allow wake (0/1),
--       outcome ('done' | 'skipped'), record member, record json
-- Returns {'fenced'} | {'ok', next due (-1 = none), wake}
local pid, token, eid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local window, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HGET', K.pair, 'token') ~= token then
  return {'fenced'}
end
local score = redis.call('ZSCORE', K.queue, eid)
if score then
  redis.call('ZREM', K.queue, eid)
  redis.call('HDEL', K.state, eid)
  if ARGV[8] == '0' then advance(tonumber(score), eid) end
  local handler = redis.call('HGET', K.pair, 'handler') or '?'
  count('pending:' .. handler, -1)
  if ARGV[10] == 'skipped' then
    redis.call('ZADD', KEYS[6], now, ARGV[11])
    redis.call('HSET', KEYS[7], ARGV[11], ARGV[12])
    count('skipped:' .. handler, 1)
  end
end
redis.call('HDEL', K.pair, 'token', 'lease_until')
local r = rearm(pid, now, window, grace, tonumber(ARGV[9]))
settle_if_empty(r[1], ARGV[7])
return {'ok', fmt(r[1]), r[2]}
