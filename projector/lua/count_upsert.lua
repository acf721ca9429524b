-- The POST on a single Redis, in one round trip: count the org's range, decide is_complete,
-- upsert the snapshot.
-- KEYS: count_range's COUNT_KEYS hashes, the caught-up hash (all of generation ARGV[9]), the
-- eight snapshot keys, the generation record.
-- ARGV: start, end, caught-up field, org, new id, grace seconds, snapshot_at, score (ms),
-- generation.
-- Returns {record_count, is_complete (0|1), then upsert's reply}, or {-1, live generation}
-- when ARGV[9] is not live (nothing written).
local live = stale_generation(KEYS[COUNT_KEYS + 10], ARGV[9])
if live then return {-1, live} end
local s, e = ARGV[1], ARGV[2]
local total = count_range(KEYS, tonumber(s), tonumber(e))
local complete = complete_at(KEYS[COUNT_KEYS + 1], ARGV[3], e, ARGV[6])
local reply = upsert(snapshot_keys(COUNT_KEYS + 1), ARGV[4], s, e, ARGV[5], string.format('%d', total),
                     complete, ARGV[7], ARGV[8])
return {total, tonumber(complete), reply[1], reply[2], reply[3]}
