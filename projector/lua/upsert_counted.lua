-- The POST's second round trip on a Redis Cluster (the count ran on the org's node first):
-- decide is_complete and upsert the snapshot.
-- KEYS: the caught-up hash, the eight snapshot keys.
-- ARGV: count, start, end, caught-up field, org, new id, grace seconds, snapshot_at, score.
-- Returns {record_count, is_complete (0|1), then upsert's reply}.
local s, e = ARGV[2], ARGV[3]
local complete = complete_at(KEYS[1], ARGV[4], e, ARGV[7])
local reply = upsert(snapshot_keys(1), ARGV[5], s, e, ARGV[6], ARGV[1], complete, ARGV[8],
                     ARGV[9])
return {tonumber(ARGV[1]), tonumber(complete), reply[1], reply[2], reply[3]}
