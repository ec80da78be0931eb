-- Give a claimed pair back without running its head event: the attempt is not counted, the lease is dropped
-- and the pair is due again (at `not before`, when given). For a worker that is shutting down, that does not
-- have the handler (a rolling deploy), or whose lease may have passed before the call could start. A holder whose
-- lease was taken over is refused. Returns 1, or 0 when fenced.
-- Own ARGV: 1 pid, 2 token, 3 not before ms (0 = now).
local pid, token, not_before = arg(1), arg(2), tonumber(arg(3))
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
redis.call('HDEL', K.pair, 'token', 'lease_until', 'running', 'alone')
local r = rearm(pid, A.now, A.window, A.grace, 0)
settle_if_empty(r[1], A.idle_ttl)
return 1
