-- The POST's second round trip on a Redis Cluster (the count ran on the org's node first):
-- decide is_complete and upsert the snapshot.
-- KEYS: the caught-up hash (of generation ARGV[10]), the eight snapshot keys, the generation
-- record.
-- ARGV: count, start, end, caught-up field, org, new id, grace seconds, snapshot_at, score,
-- the generation counted.
-- Returns {record_count, is_complete (0|1), then upsert's reply}, or {-1, live generation}
-- when the count was of a generation that is not live now (nothing written: count again).
local live = stale_generation(KEYS[10], ARGV[10])
if live then return {-1, live} end
local s, e = ARGV[2], ARGV[3]
local complete = complete_at(KEYS[1], ARGV[4], e, ARGV[7])
local reply = upsert(snapshot_keys(1), ARGV[5], s, e, ARGV[6], ARGV[1], complete, ARGV[8],
                     ARGV[9])
return {tonumber(ARGV[1]), tonumber(complete), reply[1], reply[2], reply[3]}
