-- Shared by every pair script (prepended by shared/scripts/__init__.py). Pair scripts take
--   KEYS[1] pair hash   KEYS[2] queue zset   KEYS[3] state hash   KEYS[4] shard due zset   KEYS[5] shard stats hash
--   KEYS[6] body hash (event id -> the queued message, kept while pending so a run needs no other read)
-- and may name further keys of the same shard after those. Every key shares the shard's hash tag.
-- ARGV starts with one fixed header, parsed here once; a script's own arguments follow, read with arg(n):
--   ARGV[1] now ms   ARGV[2] hold-back window ms   ARGV[3] wake grace ms   ARGV[4] idle TTL ms (= dedupe window)
--   ARGV[5] lease ms
local K = {pair = KEYS[1], queue = KEYS[2], state = KEYS[3], due = KEYS[4], stats = KEYS[5], body = KEYS[6]}
local A = {
  now = tonumber(ARGV[1]), window = tonumber(ARGV[2]), grace = tonumber(ARGV[3]), idle_ttl = ARGV[4],
  lease = tonumber(ARGV[5]),
}

-- The script's own argument n (1-based, after the header).
local function arg(n)
  return ARGV[5 + n]
end

local function fmt(n)
  return string.format('%.0f', n)
end

-- Per (pair, event) delivery state: "received|not_before|attempts|first_failure|last_failure|replay", where
-- replay is 0, or for a replayed letter 1 + the attempts it had before (its calls go on counting from there,
-- and it gets a fresh allowance of attempts on top).
local function read_state(eid)
  local raw = redis.call('HGET', K.state, eid)
  if not raw then
    return {received = 0, not_before = 0, attempts = 0, first_fail = 0, last_fail = 0, replay = 0}
  end
  local r, nb, a, ff, lf, rp = string.match(raw, '^(%-?%d+)|(%-?%d+)|(%d+)|(%-?%d+)|(%-?%d+)|(%d+)$')
  return {
    received = tonumber(r), not_before = tonumber(nb), attempts = tonumber(a),
    first_fail = tonumber(ff), last_fail = tonumber(lf), replay = tonumber(rp),
  }
end

local function write_state(eid, st)
  redis.call('HSET', K.state, eid, table.concat({
    fmt(st.received), fmt(st.not_before), fmt(st.attempts), fmt(st.first_fail), fmt(st.last_fail), fmt(st.replay),
  }, '|'))
end

-- When the head event may run: after the hold-back window (so an earlier-issued event still in flight can
-- overtake it) and after its retry backoff. A replayed dead letter skips the window.
local function runnable_at(st, window)
  -- An unordered pair holds one event: nothing can overtake it, so it needs no hold-back window.
  if redis.call('HGET', K.pair, 'ephemeral') == '1' then window = 0 end
  local at = st.received + window
  if st.replay > 0 then at = 0 end
  if st.not_before > at then at = st.not_before end
  return at
end

local function backlog_key(handler)
  return K.stats .. ':backlog:' .. handler
end

-- Keep the shard's due index and backlog index right for this pair. Returns {due, wake}: due = -1 when the
-- pair has nothing pending; wake = 1 when the caller must send a wake-up now (reserved here, so concurrent
-- callers and the sweep do not all send one).
-- Keep the handler's backlog index right for this pair (scored by its head event's arrival); returns the head.
local function index_backlog(pid)
  local handler = redis.call('HGET', K.pair, 'handler') or '?'
  local head = redis.call('ZRANGE', K.queue, 0, 0)
  if #head == 0 then
    redis.call('ZREM', backlog_key(handler), pid)
  else
    redis.call('ZADD', backlog_key(handler), read_state(head[1]).received, pid)
  end
  return head
end

local function rearm(pid, now, window, grace, allow_wake)
  local head = index_backlog(pid)
  local lease_until = tonumber(redis.call('HGET', K.pair, 'lease_until') or '0')
  if lease_until > now then
    -- Owned by a runner: look again when its lease runs out (that is how a crashed runner's work resumes).
    redis.call('ZADD', K.due, lease_until, pid)
    return {lease_until, 0}
  end
  if #head == 0 then
    redis.call('ZREM', K.due, pid)
    return {-1, 0}
  end
  local at = runnable_at(read_state(head[1]), window)
  local woken = tonumber(redis.call('HGET', K.pair, 'woken_until') or '0')
  if woken > now then
    redis.call('ZADD', K.due, woken, pid)
    return {at, 0}
  end
  if at <= now and allow_wake == 1 then
    redis.call('HSET', K.pair, 'woken_until', fmt(now + grace))
    redis.call('ZADD', K.due, now + grace, pid)
    return {at, 1}
  end
  redis.call('ZADD', K.due, at, pid)
  return {at, 0}
end

-- Event ids compared byte by byte, as the sorted set orders equal scores (Lua's `<` on strings follows the
-- server's locale, which may not be C).
local function id_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The last delivered position only moves forward; an event behind it is "late".
local function advance(score, eid)
  local last = redis.call('HMGET', K.pair, 'last_score', 'last_eid')
  local ls = tonumber(last[1])
  if ls == nil or score > ls or (score == ls and id_lt(last[2] or '', eid)) then
    redis.call('HSET', K.pair, 'last_score', fmt(score), 'last_eid', eid)
  end
end

local function is_late(score, eid)
  local last = redis.call('HMGET', K.pair, 'last_score', 'last_eid')
  local ls = tonumber(last[1])
  if ls == nil then return 0 end
  if score < ls or (score == ls and id_lt(eid, last[2] or '')) then return 1 end
  return 0
end

-- After the queue empties: an unordered pair (one per event) is deleted; an ordered one keeps its last
-- delivered position (for late detection) until it has been idle for the dedupe window.
local function settle_if_empty(due, idle_ttl)
  if due ~= -1 then return end
  if redis.call('HGET', K.pair, 'ephemeral') == '1' then
    redis.call('DEL', K.pair, K.queue, K.state, K.body)
  else
    redis.call('PEXPIRE', K.pair, idle_ttl)
  end
end

local function count(field, by)
  redis.call('HINCRBY', K.stats, field, by)
end

-- Take the pair's head event for one run under a lease (token + expiry) that fences every later write; `alone`
-- says the run will have its worker process to itself (a suspect's run, see processor/inflight.py).
-- Returns {'busy'} | {'empty'} | {'not_due', at} | {'claimed', event id, issued, attempt, late, replay,
-- received, first_failure, handler, source, key, message, suspect, convicted}.
local function try_claim(pid, token, alone)
  local now, lease, window, grace, idle_ttl = A.now, A.lease, A.window, A.grace, A.idle_ttl
  local lease_until = tonumber(redis.call('HGET', K.pair, 'lease_until') or '0')
  if lease_until > now then
    return {'busy'}
  end
  -- A lease that ran out with its token still set: that run never reported back (its worker died, froze or lost
  -- Redis). Its event becomes a suspect, to be run alone next; if it was running alone already, it is
  -- convicted: nothing else was in flight in its worker to blame.
  if redis.call('HEXISTS', K.pair, 'token') == 1 then
    local lost = redis.call('HMGET', K.pair, 'running', 'alone')
    if lost[1] and redis.call('ZSCORE', K.queue, lost[1]) then
      redis.call('HSET', K.pair, 'suspect', lost[1])
      if lost[2] == '1' then redis.call('HSET', K.pair, 'convicted', lost[1]) end
    end
  end
  redis.call('HDEL', K.pair, 'woken_until', 'token', 'lease_until')
  local head = redis.call('ZRANGE', K.queue, 0, 0, 'WITHSCORES')
  if #head == 0 then
    local r = rearm(pid, now, window, grace, 0)
    settle_if_empty(r[1], idle_ttl)
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
  redis.call('HSET', K.pair, 'token', token, 'lease_until', fmt(now + lease), 'running', eid, 'alone', alone)
  redis.call('ZADD', K.due, now + lease, pid)
  local meta = redis.call('HMGET', K.pair, 'handler', 'source', 'okey', 'suspect', 'convicted')
  return {
    'claimed', eid, fmt(score), st.attempts, is_late(score, eid), st.replay, fmt(st.received), fmt(st.first_fail),
    meta[1], meta[2], meta[3], redis.call('HGET', K.body, eid) or '', meta[4] == eid and 1 or 0,
    meta[5] == eid and 1 or 0,
  }
end
