-- The receiver's write: append a batch of accepted deliveries to the inbox and leave one "new work" hint on the
-- wake list the ingesters block on (one hint is as good as many) — one atomic command and one reply, cheaper
-- than a MULTI of three commands. KEYS: 1 inbox list, 2 wake list. ARGV: the queued messages. Returns 1.
redis.call('RPUSH', KEYS[1], unpack(ARGV))
redis.call('RPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], -1, -1)
return 1
