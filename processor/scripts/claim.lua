-- Take the pair's head event for one run (see try_claim in the prelude).
-- ARGV: pid, token, now, lease ms, window ms, wake grace ms, idle ttl ms
return try_claim(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
  ARGV[7])
