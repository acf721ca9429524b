-- DELETE: KEYS: the eight snapshot keys (of the snapshot's org). ARGV: id, org.
-- Returns 1 when deleted, 0 when there was no such snapshot (of that org).
local k = snapshot_keys(0)
local id, org = ARGV[1], ARGV[2]
local record = redis.call('HGET', k.records, id)
if not record then return 0 end
local old = unpack_record(record)
if old[1] ~= org then return 0 end
redis.call('HDEL', k.by_range, range_field(org, old[2], old[3]))
unindex(k, id, old[5])
redis.call('HDEL', k.records, id)
return 1
