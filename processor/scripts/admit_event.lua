-- Record that an event arrived and keep its exact bytes for handlers, inspection and replay. Idempotent: the
-- first arrival within the dedupe window wins; a duplicate changes nothing. KEYS[1] seen marker,
-- KEYS[2] archive hash, KEYS[3] shard event index zset.
-- ARGV: dedupe ttl ms, retention ms, received ms, index member, raw, source, type, signed ms, issued ms, targets
-- Returns 1 for a new event, 0 for a duplicate.
local received = tonumber(ARGV[3])
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[2], 'raw', ARGV[5], 'source', ARGV[6], 'type', ARGV[7], 'signed', ARGV[8],
  'received', ARGV[3], 'issued', ARGV[9], 'targets', ARGV[10])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], received, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', received - tonumber(ARGV[2]))
return 1
