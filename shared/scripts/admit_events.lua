-- Record that events of one shard arrived and keep their exact bytes for inspection and replay. Dedupe is by
-- (source, event id): the first arrival within the dedupe window sets the marker, whose value is its body's
-- digest and its routes (the pairs it goes to); a later arrival changes nothing and gets that value back, so the
-- caller admits it to the first arrival's routes, or to none when its body differs.
-- KEYS: 1 shard event index zset, then per event: seen marker, archive hash.
-- ARGV: dedupe ttl ms, retention ms, then per event: received ms, index member, raw, source, type, signed ms,
--       issued ms, target handler names, marker value ("<digest>|<routes>"), routes.
-- Returns per event {1} (new) or {0, marker value of the first arrival}.
local ttl, retention = ARGV[1], tonumber(ARGV[2])
local out = {}
local oldest = nil
for i = 0, (#KEYS - 1) / 2 - 1 do
  local seen, archive, a = KEYS[2 + i * 2], KEYS[3 + i * 2], 2 + i * 10
  local received, member, raw, source, type = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local signed, issued, names, marker, routes = ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 10]
  if redis.call('SET', seen, marker, 'NX', 'PX', ttl) then
    redis.call('HSET', archive, 'raw', raw, 'source', source, 'type', type, 'signed', signed, 'received', received,
      'issued', issued, 'targets', names, 'routes', routes)
    redis.call('PEXPIRE', archive, retention)
    redis.call('ZADD', KEYS[1], received, member)
    received = tonumber(received)
    if oldest == nil or received < oldest then oldest = received end
    out[#out + 1] = {1}
  else
    out[#out + 1] = {0, redis.call('GET', seen) or ''}
  end
end
if oldest ~= nil then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', oldest - retention)
end
return out
