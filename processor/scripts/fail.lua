-- Record a failed attempt by the lease holder: schedule the retry, or after the last attempt move the event to
-- the shard's dead letters so the key moves on. KEYS[7] dead zset, KEYS[8] records hash.
-- ARGV: pid, token, event id, now, window ms, wake grace ms, idle ttl ms, late (0/1), allow wake (0/1),
--       retry at ms, max attempts, record member, record json
-- Returns {'fenced'} | {'retry' | 'dead', next due (-1 = none), wake}
local pid, token, eid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local window, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HGET', K.pair, 'token') ~= token then
  return {'fenced'}
end
local outcome = 'retry'
local score = redis.call('ZSCORE', K.queue, eid)
if score then
  local st = read_state(eid)
  if st.first_fail == 0 then st.first_fail = now end
  st.last_fail = now
  if st.attempts >= tonumber(ARGV[11]) then
    outcome = 'dead'
    local handler = redis.call('HGET', K.pair, 'handler') or '?'
    redis.call('ZREM', K.queue, eid)
    redis.call('HDEL', K.state, eid)
    redis.call('HDEL', K.body, eid)
    redis.call('ZADD', KEYS[7], now, ARGV[12])
    redis.call('HSET', KEYS[8], ARGV[12], ARGV[13])
    if ARGV[8] == '0' then advance(tonumber(score), eid) end
    count('pending:' .. handler, -1)
    count('dead:' .. handler, 1)
  else
    st.not_before = tonumber(ARGV[10])
    write_state(eid, st)
  end
end
redis.call('HDEL', K.pair, 'token', 'lease_until', 'suspect')  -- the holder reported back
local r = rearm(pid, now, window, grace, tonumber(ARGV[9]))
settle_if_empty(r[1], ARGV[7])
return {outcome, fmt(r[1]), r[2]}
