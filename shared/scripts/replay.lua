-- Put a dead letter (or a skipped late event) back into its handler's queue at its issued position; only that
-- handler runs it again, in key order, without the hold-back window. KEYS[7] dead or skipped zset,
-- KEYS[8] records hash, KEYS[9] the "admitted" marker of this (pair, event).
-- Own ARGV: 1 pid, 2 event id, 3 issued ms, 4 member, 5 handler, 6 source, 7 ordering key, 8 ephemeral (0/1),
--           9 from ('dead' | 'skipped'), 10 queued message (rebuilt from the archive), 11 attempts it had
-- Its calls go on counting from the attempts it had: a call of the replay never says attempt 1 again (an
-- abandoned call of it may still be running), and it gets a fresh allowance of attempts on top.
-- Returns {replayed (0/1), due, wake}
local pid, eid, issued, member = arg(1), arg(2), tonumber(arg(3)), arg(4)
local handler, source, ordering_key, ephemeral, from, message = arg(5), arg(6), arg(7), arg(8), arg(9), arg(10)
local had = tonumber(arg(11))
if not redis.call('ZSCORE', KEYS[7], member) then
  return {0, -1, 0}
end
redis.call('ZREM', KEYS[7], member)
redis.call('HDEL', KEYS[8], member)
redis.call('HSET', K.pair, 'handler', handler, 'source', source, 'okey', ordering_key, 'ephemeral', ephemeral)
redis.call('PERSIST', K.pair)
redis.call('SET', KEYS[9], '1', 'PX', A.idle_ttl)
redis.call('ZADD', K.queue, issued, eid)
redis.call('HSET', K.body, eid, message)
write_state(eid, {received = A.now, not_before = 0, attempts = had, first_fail = 0, last_fail = 0, replay = had + 1})
count('pending:' .. handler, 1)
count(from .. ':' .. handler, -1)
-- No wake-up is reserved: the replaying tool sends none, so the pair is simply due and the next sweep runs it.
local r = rearm(pid, A.now, A.window, A.grace, 0)
return {1, fmt(r[1]), r[2]}
