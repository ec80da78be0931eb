-- Drop the first N inbox messages once the ingest lease holder has admitted them; refused when the lease now
-- belongs to another ingester (which re-admits the same messages idempotently). KEYS[1] inbox, KEYS[2] lease.
-- ARGV: token, count, lease ms. Returns 1 or 0.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
