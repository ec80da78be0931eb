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
  local k, a = 2 + i * 2, 3 + i * 10
  local received = tonumber(ARGV[a])
  if redis.call('SET', KEYS[k], ARGV[a + 8], 'NX', 'PX', ttl) then
    redis.call('HSET', KEYS[k + 1], 'raw', ARGV[a + 2], 'source', ARGV[a + 3], 'type', ARGV[a + 4],
      'signed', ARGV[a + 5], 'received', ARGV[a], 'issued', ARGV[a + 6], 'targets', ARGV[a + 7],
      'routes', ARGV[a + 9])
    redis.call('PEXPIRE', KEYS[k + 1], retention)
    redis.call('ZADD', KEYS[1], received, ARGV[a + 1])
    if oldest == nil or received < oldest then oldest = received end
    out[#out + 1] = {1}
  else
    out[#out + 1] = {0, redis.call('GET', KEYS[k]) or ''}
  end
end
if oldest ~= nil then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', oldest - retention)
end
return out
