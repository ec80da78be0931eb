-- Keep an archived event at least ARGV[1] ms longer (never shorten it): a dead letter or a skipped event needs
-- its bytes for replay for as long as the letter itself is kept. KEYS[1] archive hash. Returns 1 if it exists.
local ttl = tonumber(ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left == -2 then
  return 0
end
if left ~= -1 and left < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
