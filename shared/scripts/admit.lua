-- Admit a batch of (pair, event) items of one shard into their handlers' queues, each at most once per
-- (pair, event) within the dedupe window. One call per shard and ingest batch: the per-call cost of a script
-- is paid once, not per event. Each item is idempotent on its own (its "admitted" marker), so re-admitting a
-- batch after a crash changes nothing.
-- KEYS: 1 shard due zset, 2 shard stats hash, then per item: pair, queue, state, body, admitted marker.
-- Own ARGV, per item (9 each): pid, event id, issued ms, received ms, handler, source, ordering key,
--       ephemeral (1 = unordered pair), queued message.
-- Returns per item {admitted (0/1), due, wake}, flattened.
local now, window, grace, ttl = A.now, A.window, A.grace, A.idle_ttl
K.due, K.stats = KEYS[1], KEYS[2]
local out = {}
local n = (#KEYS - 2) / 5
-- Several events of one pair often come in one batch: re-index each pair once, after its last admission.
local last_of = {}
for i = 0, n - 1 do last_of[arg(1 + i * 9)] = i end
for i = 0, n - 1 do
  local k, a = 3 + i * 5, i * 9
  K.pair, K.queue, K.state, K.body = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local pid, eid, issued, received = arg(a + 1), arg(a + 2), tonumber(arg(a + 3)), tonumber(arg(a + 4))
  local handler, source, ordering_key, ephemeral, message = arg(a + 5), arg(a + 6), arg(a + 7), arg(a + 8),
    arg(a + 9)
  if redis.call('SET', KEYS[k + 4], '1', 'NX', 'PX', ttl) then
    redis.call('HSET', K.pair, 'handler', handler, 'source', source, 'okey', ordering_key, 'ephemeral', ephemeral)
    redis.call('PERSIST', K.pair)
    redis.call('ZADD', K.queue, issued, eid)
    redis.call('HSET', K.body, eid, message)
    -- The hold-back window runs from when the event was received or admitted, whichever is later: after an
    -- ingest backlog (or with a worker clock behind the receiver's) events still get their full window.
    write_state(eid, {received = math.max(received, now), not_before = 0, attempts = 0,
      first_fail = 0, last_fail = 0, replay = 0})
    count('pending:' .. handler, 1)
    out[#out + 1], out[#out + 2], out[#out + 3] = 1, '-1', 0
  else
    out[#out + 1], out[#out + 2], out[#out + 3] = 0, '-1', 0
  end
  if last_of[pid] == i and redis.call('EXISTS', K.pair) == 1 then
    local r = rearm(pid, now, window, grace, 1)
    out[#out - 1], out[#out] = fmt(r[1]), r[2]
  end
end
return out
