#!lua flags=no-writes
-- Sum bucket counters of one org: KEYS are its hashes; ARGV[k] holds KEYS[k]'s fields,
-- comma-joined (one argument per key: ~200 separate arguments cost the API more to pack
-- than the whole sum costs Redis). Read-only, so it may run on a replica (EVALSHA_RO).
local total = 0
for k = 1, #KEYS do
  local fields = {}
  for field in string.gmatch(ARGV[k], '[^,]+') do
    fields[#fields + 1] = field
  end
  local vals = redis.call('HMGET', KEYS[k], unpack(fields))
  for i = 1, #fields do
    if vals[i] then total = total + tonumber(vals[i]) end
  end
end
return total
