-- Replace the generation record if it is still the version the caller read (compare-and-set),
-- so every transition of projector/generation.py is atomic however many processes race.
-- KEYS[1]: the record. ARGV[1]: the version read ('0': none stored), then field, value pairs
-- of the new record (its version included).
-- Returns 1 when replaced, 0 when the record changed since it was read.
local stored = redis.call('HGET', KEYS[1], 'version') or '0'
if stored ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
