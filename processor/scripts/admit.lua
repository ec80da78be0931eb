-- Admit one event into one handler's queue for its ordering key, at most once per (pair, event) within the
-- dedupe window. KEYS[7] = the "admitted" marker of this (pair, event).
-- ARGV: pid, event id, issued ms, received ms, now, window ms, wake grace ms, dedupe ttl ms,
--       handler, source, ordering key, ephemeral (1 = unordered pair), queued message
-- Returns {admitted (0/1), due, wake}.
local pid, eid, issued, received = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now, window, grace, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
if not redis.call('SET', KEYS[7], '1', 'NX', 'PX', ttl) then
  return {0, -1, 0}
end
redis.call('HSET', K.pair, 'handler', ARGV[9], 'source', ARGV[10], 'okey', ARGV[11], 'ephemeral', ARGV[12])
redis.call('PERSIST', K.pair)
redis.call('ZADD', K.queue, issued, eid)
redis.call('HSET', K.body, eid, ARGV[13])
write_state(eid, {received = received, not_before = 0, attempts = 0, first_fail = 0, last_fail = 0, replay = 0})
count('pending:' .. ARGV[9], 1)
local r = rearm(pid, now, window, grace, 1)
return {1, fmt(r[1]), r[2]}
