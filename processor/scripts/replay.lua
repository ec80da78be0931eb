-- Put a dead letter (or a skipped late event) back into its handler's queue at its issued position; only that
-- handler runs it again, in key order, without the hold-back window. KEYS[7] dead or skipped zset,
-- KEYS[8] records hash, KEYS[9] the "admitted" marker of this (pair, event).
-- ARGV: pid, event id, issued ms, now, window ms, wake grace ms, member, handler, source, key, ephemeral, ttl ms,
--       from ('dead' | 'skipped'), queued message (rebuilt from the archive)
-- Returns {replayed (0/1), due, wake}
local pid, eid, issued, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local window, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
if not redis.call('ZSCORE', KEYS[7], ARGV[7]) then
  return {0, -1, 0}
end
redis.call('ZREM', KEYS[7], ARGV[7])
redis.call('HDEL', KEYS[8], ARGV[7])
redis.call('HSET', K.pair, 'handler', ARGV[8], 'source', ARGV[9], 'okey', ARGV[10], 'ephemeral', ARGV[11])
redis.call('PERSIST', K.pair)
redis.call('SET', KEYS[9], '1', 'PX', ARGV[12])
redis.call('ZADD', K.queue, issued, eid)
redis.call('HSET', K.body, eid, ARGV[14])
write_state(eid, {received = now, not_before = 0, attempts = 0, first_fail = 0, last_fail = 0, replay = 1})
count('pending:' .. ARGV[8], 1)
if ARGV[13] == 'dead' then
  count('dead:' .. ARGV[8], -1)
else
  count('skipped:' .. ARGV[8], -1)
end
-- No wake-up is reserved: the replaying tool sends none, so the pair is simply due and the next sweep runs it.
local r = rearm(pid, now, window, grace, 0)
return {1, fmt(r[1]), r[2]}
