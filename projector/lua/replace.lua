-- PUT: give a snapshot a new range and count.
-- KEYS: the caught-up hash (of generation ARGV[10]), the eight snapshot keys (of the
-- snapshot's org), the generation record.
-- ARGV: id, org, start, end, count, caught-up field, grace seconds, snapshot_at, score, the
-- generation counted.
-- Returns {'missing'}, {'conflict', other id}, {'stale', live generation} (the count was of a
-- generation not live now: nothing written) or {'ok', record}.
local live = stale_generation(KEYS[10], ARGV[10])
if live then return {'stale', live} end
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
