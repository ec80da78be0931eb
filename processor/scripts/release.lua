-- Give a claimed pair back without running its head event: the attempt is not counted, the lease is dropped
-- and the pair is due again (at `not before`, when given). For a worker that is shutting down, or that does not
-- have the handler (a rolling deploy). A holder whose lease was taken over is refused.
-- ARGV: pid, token, now, window ms, wake grace ms, idle ttl ms, not before ms (0 = now)
-- Returns 1, or 0 when fenced.
local pid, token, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local window, grace, not_before = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
if redis.call('HGET', K.pair, 'token') ~= token then
  return 0
end
local head = redis.call('ZRANGE', K.queue, 0, 0)
if #head == 1 then
  local st = read_state(head[1])
  if st.attempts > 0 then st.attempts = st.attempts - 1 end
  if not_before > st.not_before then st.not_before = not_before end
  write_state(head[1], st)
end
redis.call('HDEL', K.pair, 'token', 'lease_until')
local r = rearm(pid, now, window, grace, 0)
settle_if_empty(r[1], ARGV[6])
return 1
