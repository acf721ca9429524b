#!lua flags=no-writes
-- Sum bucket counters of one org: KEYS are its hashes; ARGV, per key in order, the number
-- of fields then the fields. Read-only, so it may run on a replica (EVALSHA_RO).
local total, a = 0, 1
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  local vals = redis.call('HMGET', KEYS[k], unpack(ARGV, a + 1, a + n))
  for i = 1, n do
    if vals[i] then total = total + tonumber(vals[i]) end
  end
  a = a + n + 1
end
return total
