-- Run one handler again on an event it already completed (a redrive after a bug that did not raise): put the event
-- back in the pair's queue at its issued position, without the hold-back window, as a replay. Refused while the
-- event is still pending or running for this pair, or is a dead or skipped letter (`dlq replay` is for those).
-- KEYS[7] the "admitted" marker of this (pair, event), KEYS[8] dead zset, KEYS[9] skipped zset.
-- Own ARGV: 1 pid, 2 event id, 3 issued ms, 4 member, 5 handler, 6 source, 7 ordering key, 8 ephemeral (0/1),
--           9 queued message (rebuilt from the archive)
-- The marker holds the attempt the event completed on when that was above 1 (complete.lua); its calls go on
-- counting from there, and the marker is set again for the dedupe window, so a redelivery cannot queue it twice.
-- Returns {resent (0/1) or 'pending' | 'letter', due, wake}
local pid, eid, issued, member = arg(1), arg(2), tonumber(arg(3)), arg(4)
local handler, source, ordering_key, ephemeral, message = arg(5), arg(6), arg(7), arg(8), arg(9)
if redis.call('ZSCORE', K.queue, eid) then
  return {'pending', -1, 0}
end
if redis.call('ZSCORE', KEYS[8], member) or redis.call('ZSCORE', KEYS[9], member) then
  return {'letter', -1, 0}
end
local had = math.max(1, tonumber(redis.call('GET', KEYS[7]) or '1') or 1)
redis.call('HSET', K.pair, 'handler', handler, 'source', source, 'okey', ordering_key, 'ephemeral', ephemeral)
redis.call('PERSIST', K.pair)
redis.call('SET', KEYS[7], fmt(had), 'PX', A.idle_ttl)
redis.call('ZADD', K.queue, issued, eid)
redis.call('HSET', K.body, eid, message)
write_state(eid, {received = A.now, not_before = 0, attempts = had, first_fail = 0, last_fail = 0, replay = had + 1})
count('pending:' .. handler, 1)
local r = rearm(pid, A.now, A.window, A.grace, 0)
return {1, fmt(r[1]), r[2]}
