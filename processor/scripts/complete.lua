-- Record that the lease holder finished the head event: pop it, move the delivered position, free the pair
-- and re-arm it for the next event — or, with `claim next`, take the next event at once if it is runnable
-- (one round trip per event for a busy key). A holder whose lease was taken over is refused ('fenced').
-- KEYS[7] skipped zset, KEYS[8] records hash (used when outcome = 'skipped').
-- ARGV: pid, token, event id, now, window ms, wake grace ms, idle ttl ms, late (0/1), allow wake (0/1),
--       outcome ('done' | 'skipped'), record member, record json, claim next (0/1), lease ms
-- Returns {'fenced'} | {'ok', next due (-1 = none), wake, [claim reply of try_claim when claimed]...}
local pid, token, eid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local window, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HGET', K.pair, 'token') ~= token then
  return {'fenced'}
end
local score = redis.call('ZSCORE', K.queue, eid)
if score then
  redis.call('ZREM', K.queue, eid)
  redis.call('HDEL', K.state, eid)
  redis.call('HDEL', K.body, eid)
  if ARGV[8] == '0' then advance(tonumber(score), eid) end
  local handler = redis.call('HGET', K.pair, 'handler') or '?'
  count('pending:' .. handler, -1)
  if ARGV[10] == 'skipped' then
    redis.call('ZADD', KEYS[7], now, ARGV[11])
    redis.call('HSET', KEYS[8], ARGV[11], ARGV[12])
    count('skipped:' .. handler, 1)
  end
end
redis.call('HDEL', K.pair, 'token', 'lease_until', 'suspect')  -- the holder reported back
if ARGV[13] == '1' then
  local head = redis.call('ZRANGE', K.queue, 0, 0)
  if #head == 1 and runnable_at(read_state(head[1]), window) <= now then
    rearm(pid, now, window, grace, 0)  -- keeps the backlog index right; try_claim then re-indexes the lease
    local claimed = try_claim(pid, token, now, tonumber(ARGV[14]), window, grace, ARGV[7])
    local reply = {'ok', fmt(now), 0}
    for _, v in ipairs(claimed) do reply[#reply + 1] = v end
    return reply
  end
end
local r = rearm(pid, now, window, grace, tonumber(ARGV[9]))
settle_if_empty(r[1], ARGV[7])
return {'ok', fmt(r[1]), r[2]}
