-- Take the pair's head event for one run, under a lease (token + expiry) that fences every later write.
-- ARGV: pid, token, now, lease ms, window ms, wake grace ms, idle ttl ms
-- Returns {'busy'} | {'empty'} | {'not_due', at} |
--         {'claimed', event id, issued, attempt, late, replay, received, first_failure, handler, source, key}
local pid, token, now, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local window, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
local lease_until = tonumber(redis.call('HGET', K.pair, 'lease_until') or '0')
if lease_until > now then
  return {'busy'}
end
redis.call('HDEL', K.pair, 'woken_until', 'token', 'lease_until')
local head = redis.call('ZRANGE', K.queue, 0, 0, 'WITHSCORES')
if #head == 0 then
  local r = rearm(pid, now, window, grace, 0)
  settle_if_empty(r[1], ARGV[7])
  return {'empty'}
end
local eid, score = head[1], tonumber(head[2])
local st = read_state(eid)
local at = runnable_at(st, window)
if at > now then
  redis.call('ZADD', K.due, at, pid)
  return {'not_due', fmt(at)}
end
st.attempts = st.attempts + 1
write_state(eid, st)
redis.call('HSET', K.pair, 'token', token, 'lease_until', fmt(now + lease))
redis.call('ZADD', K.due, now + lease, pid)
local meta = redis.call('HMGET', K.pair, 'handler', 'source', 'okey')
return {
  'claimed', eid, fmt(score), st.attempts, is_late(score, eid), st.replay, fmt(st.received), fmt(st.first_fail),
  meta[1], meta[2], meta[3],
}
