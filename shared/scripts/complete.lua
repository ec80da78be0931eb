-- Record that the lease holder finished the head event: pop it, move the delivered position, free the pair
-- and re-arm it for the next event — or, with `claim next`, take the next event at once if it is runnable
-- (one round trip per event for a busy key). A holder whose lease was taken over is refused ('fenced').
-- KEYS[7] skipped zset, KEYS[8] records hash (used when outcome = 'skipped'), KEYS[9] the "admitted" marker of
-- this (pair, event).
-- Own ARGV: 1 pid, 2 token, 3 event id, 4 late (0/1), 5 allow wake (0/1), 6 outcome ('done' | 'skipped'),
--           7 record member, 8 record json, 9 claim next (0/1), 10 the attempt that completed
-- Returns {'fenced'} | {'ok', next due (-1 = none), wake, [claim reply of try_claim when claimed]...}
local pid, token, eid, late, allow_wake = arg(1), arg(2), arg(3), arg(4), tonumber(arg(5))
local outcome, member, record, claim_next = arg(6), arg(7), arg(8), arg(9)
local attempt = tonumber(arg(10) or '1') or 1
local now = A.now
if redis.call('HGET', K.pair, 'token') ~= token then
  return {'fenced'}
end
local score = redis.call('ZSCORE', K.queue, eid)
if score then
  redis.call('ZREM', K.queue, eid)
  redis.call('HDEL', K.state, eid)
  redis.call('HDEL', K.body, eid)
  if late == '0' then advance(tonumber(score), eid) end
  local handler = redis.call('HGET', K.pair, 'handler') or '?'
  count('pending:' .. handler, -1)
  -- Kept for a later `events resend`, whose calls go on counting above it; attempt 1 is what the marker says.
  if attempt > 1 then redis.call('SET', KEYS[9], fmt(attempt), 'XX', 'KEEPTTL') end
  if outcome == 'skipped' then
    redis.call('ZADD', KEYS[7], now, member)
    redis.call('HSET', KEYS[8], member, record)
    count('skipped:' .. handler, 1)
  end
end
redis.call('HDEL', K.pair, 'token', 'lease_until', 'running', 'alone')
if redis.call('HGET', K.pair, 'suspect') == eid then
  redis.call('HDEL', K.pair, 'suspect', 'convicted')  -- it reported back: whatever killed a worker, not this
end
if claim_next == '1' then
  local head = redis.call('ZRANGE', K.queue, 0, 0)
  if #head == 1 and runnable_at(read_state(head[1]), A.window) <= now then
    index_backlog(pid)  -- the head changed; try_claim then indexes the new lease in the due set
    local claimed = try_claim(pid, token, '0')
    local reply = {'ok', fmt(now), 0}
    for _, v in ipairs(claimed) do reply[#reply + 1] = v end
    return reply
  end
end
local r = rearm(pid, now, A.window, A.grace, allow_wake)
settle_if_empty(r[1], A.idle_ttl)
return {'ok', fmt(r[1]), r[2]}
