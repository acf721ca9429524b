-- PUT: give a snapshot a new range and count.
-- KEYS: the caught-up hash, the eight snapshot keys (of the snapshot's org).
-- ARGV: id, org, start, end, count, caught-up field, grace seconds, snapshot_at, score.
-- Returns {'missing'}, {'conflict', other id} or {'ok', record}.
local k = snapshot_keys(1)
local id, org, s, e = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local record = redis.call('HGET', k.records, id)
if not record then return {'missing'} end
local old = unpack_record(record)
if old[1] ~= org then return {'missing'} end
local field = range_field(org, s, e)
local holder = redis.call('HGET', k.by_range, field)
if holder and holder ~= id then return {'conflict', holder} end
redis.call('HDEL', k.by_range, range_field(org, old[2], old[3]))
redis.call('HSET', k.by_range, field, id)
unindex(k, id, old[5])
local complete = complete_at(KEYS[1], ARGV[6], e, ARGV[7])
store(k, id, org, s, e, ARGV[5], complete, ARGV[8], ARGV[9])
return {'ok', redis.call('HGET', k.records, id)}
