#!lua flags=no-writes
-- Count one org's events in each of many consecutive ranges, in one call: range i is
-- [edge[i], edge[i + 1] - 1] (epoch seconds), P(edge[i + 1]) - P(edge[i]) with P the count
-- tree's prefix (count_lib.lua): neighbouring ranges share the prefix at their common edge,
-- and every hash is read once whatever the number of edges that fall in it.
-- KEYS: every hash that may be read (projector.keys.series_hashes), the upper hash first.
-- ARGV[1]: packed `<i4` number of edges n, then n increasing edges (i8).
-- Returns n - 1 counts.
local blob = ARGV[1]
local n, pos = struct.unpack('<i4', blob)
local prefix = tree_reader(KEYS[1])
local last, counts = nil, {}
for i = 1, n do
  local edge
  edge, pos = struct.unpack('<i8', blob, pos)
  local p = prefix(edge)
  if last then counts[i - 1] = p - last end
  last = p
end
return counts
