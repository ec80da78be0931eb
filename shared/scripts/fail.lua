-- Record a failed attempt by the lease holder: schedule the retry, or after the last attempt move the event to
-- the shard's dead letters so the key moves on. KEYS[7] dead zset, KEYS[8] records hash.
-- Own ARGV: 1 pid, 2 token, 3 event id, 4 late (0/1), 5 allow wake (0/1), 6 retry at ms, 7 max attempts,
--           8 record member, 9 record json
-- Returns {'fenced'} | {'retry' | 'dead', next due (-1 = none), wake}
local pid, token, eid, late, allow_wake = arg(1), arg(2), arg(3), arg(4), tonumber(arg(5))
local retry_at, max_attempts, member, record = tonumber(arg(6)), tonumber(arg(7)), arg(8), arg(9)
local now = A.now
if redis.call('HGET', K.pair, 'token') ~= token then
  return {'fenced'}
end
local outcome = 'retry'
local score = redis.call('ZSCORE', K.queue, eid)
if score then
  local st = read_state(eid)
  if st.first_fail == 0 then st.first_fail = now end
  st.last_fail = now
  -- A replayed letter gets a fresh allowance on top of the attempts it had (see read_state).
  local used = st.attempts
  if st.replay > 0 then used = st.attempts - (st.replay - 1) end
  if used >= max_attempts then
    outcome = 'dead'
    local handler = redis.call('HGET', K.pair, 'handler') or '?'
    redis.call('ZREM', K.queue, eid)
    redis.call('HDEL', K.state, eid)
    redis.call('HDEL', K.body, eid)
    redis.call('ZADD', KEYS[7], now, member)
    redis.call('HSET', KEYS[8], member, record)
    if late == '0' then advance(tonumber(score), eid) end
    count('pending:' .. handler, -1)
    count('dead:' .. handler, 1)
  else
    st.not_before = retry_at
    write_state(eid, st)
  end
end
redis.call('HDEL', K.pair, 'token', 'lease_until', 'running', 'alone')
if redis.call('HGET', K.pair, 'suspect') == eid then
  redis.call('HDEL', K.pair, 'suspect', 'convicted')  -- it reported back: whatever killed a worker, not this
end
local r = rearm(pid, now, A.window, A.grace, allow_wake)
settle_if_empty(r[1], A.idle_ttl)
return {outcome, fmt(r[1]), r[2]}
