#!lua flags=no-writes
-- Count one org's events in each of many consecutive ranges, in one call: range i is
-- [edge[i], edge[i + 1] - 1] (epoch seconds). projector/scripts.py heads it with the layout's
-- constants (LEVEL_SIZES, and FIELD_* from projector/keys.py's LEVEL_FIELDS), so no level size
-- or field formula is copied here.
--
-- How: P(x) = events before second x = the sum over levels L of S_L(x), the whole level-L
-- buckets between the start of x's level-(L + 1) bucket (its parent) and x's own level-L
-- bucket. Range i is P(edge[i + 1]) - P(edge[i]): neighbouring ranges share the prefix at
-- their common edge. Per level, the edges under one parent are taken together: when they
-- are many (daily edges under one 32-day block), all the parent's children are read once and
-- summed as a running prefix; when few (the hour of one daily edge at +05:45), each edge's
-- r children before it are read, or the parent less the ratio - r after it, whichever reads
-- fewer fields (a parent holds the sum of its children: apply.lua increments one bucket at
-- every level per event, in one script). One HMGET per hash; a field is read twice at most.
--
-- KEYS: every hash that may be read (projector.keys.series_hashes).
-- ARGV[1]: packed `<i4i4` number of edges n, number of keys k; then n increasing edges (i8);
--          then per key, in KEYS order, its kind (i4) and hash number (i8).
-- Returns n - 1 counts.
local CHUNK = 1000 -- fields per HMGET: unpack() is bounded by Lua's C stack
local TOP = #LEVEL_SIZES - 1
local floor, min, unpack_struct = math.floor, math.min, struct.unpack
local blob = ARGV[1]
local n, k, pos = unpack_struct('<i4i4', blob)

local edges = {}
for i = 1, n do
  edges[i], pos = unpack_struct('<i8', blob, pos)
end
local hashes = {}
for i = 1, k do
  local kind, number
  kind, number, pos = unpack_struct('<i4i8', blob, pos)
  hashes[kind] = hashes[kind] or {}
  hashes[kind][number] = i
end

-- Reads: lists[slot] is what to HMGET from KEYS[slot]. A segment is a run of consecutive
-- positions of one list, summed with a sign; a part of a prefix is one or two segments.
local lists = {}
for i = 1, k do lists[i] = {} end
local seg_slot, seg_from, seg_to, seg_sign = {}, {}, {}, {}
local segs = 0

-- Read buckets first .. last (consecutive, one parent) of a level: a new segment.
local function read(level, first, last, sign)
  local per = FIELD_PER_HASH[level + 1]
  local number = 0
  if per > 0 then number = floor(first / per) end
  local slot = (hashes[FIELD_KIND[level + 1]] or {})[number]
  if not slot then error('series: no key declared for level ' .. level .. ' bucket ' .. first) end
  local step = FIELD_STEP[level + 1]
  -- Numbers: redis.call writes integral ones as integers (fields stay below 2^53).
  local field = FIELD_BASE[level + 1] + step * (first - number * per)
  local list = lists[slot]
  local from = #list + 1
  for i = 0, last - first do list[from + i] = field + step * i end
  segs = segs + 1
  seg_slot[segs], seg_from[segs], seg_to[segs], seg_sign[segs] = slot, from, from + last - first, sign
  return segs
end

-- Parts of each edge's prefix, as (first segment, last segment) pairs.
local edge_parts = {}
for j = 1, n do edge_parts[j] = {} end
local function add_part(j, first, last)
  local list = edge_parts[j]
  list[#list + 1] = first
  list[#list + 1] = last
end

-- A segment of r children of a group read earlier: its first r positions.
local function sub_segment(group, r)
  segs = segs + 1
  seg_slot[segs], seg_from[segs] = seg_slot[group], seg_from[group]
  seg_to[segs], seg_sign[segs] = seg_from[group] + r - 1, 1
  return segs
end

for level = 0, TOP - 1 do
  local size, parent_size = LEVEL_SIZES[level + 1], LEVEL_SIZES[level + 2]
  local ratio = parent_size / size
  local j = 1
  while j <= n do
    local parent = floor(edges[j] / parent_size)
    local last = j
    while last < n and floor(edges[last + 1] / parent_size) == parent do last = last + 1 end
    local low = parent * ratio
    local cost, seen = 0, {}
    for e = j, last do
      local r = floor(edges[e] / size) - low
      if r > 0 and not seen[r] then
        seen[r] = true
        cost = cost + min(r, ratio - r + 1)
      end
    end
    if cost > ratio then
      local group = read(level, low, low + ratio - 1, 1)
      for e = j, last do
        local r = floor(edges[e] / size) - low
        if r > 0 then
          local id = sub_segment(group, r)
          add_part(e, id, id)
        end
      end
    elseif cost > 0 then
      local memo = {}
      for e = j, last do
        local index = floor(edges[e] / size)
        local r = index - low
        if r > 0 then
          local part = memo[r]
          if not part then
            if r <= ratio - r + 1 then
              local id = read(level, low, index - 1, 1)
              part = {id, id}
            else
              local whole = read(level + 1, parent, parent, 1)
              part = {whole, read(level, index, low + ratio - 1, -1)}
            end
            memo[r] = part
          end
          add_part(e, part[1], part[2])
        end
      end
    end
    j = last + 1
  end
end
-- The top level: one running prefix over its buckets up to the last edge's.
local top_size = LEVEL_SIZES[TOP + 1]
local tops = floor(edges[n] / top_size)
if tops > 0 then
  local group = read(TOP, 0, tops - 1, 1)
  for j = 1, n do
    local r = floor(edges[j] / top_size)
    if r > 0 then
      local id = sub_segment(group, r)
      add_part(j, id, id)
    end
  end
end

-- sums[slot][p]: the values read from KEYS[slot] up to position p, so a segment costs one
-- subtraction.
local sums = {}
for slot = 1, k do
  local list, running, total = lists[slot], {[0] = 0}, 0
  for from = 1, #list, CHUNK do
    local upto = min(from + CHUNK - 1, #list)
    local got = redis.call('HMGET', KEYS[slot], unpack(list, from, upto))
    for i = 1, upto - from + 1 do
      total = total + (tonumber(got[i]) or 0)
      running[from + i - 1] = total
    end
  end
  sums[slot] = running
end

local prefix = {}
for j = 1, n do
  local total, list = 0, edge_parts[j]
  for p = 1, #list, 2 do
    for sg = list[p], list[p + 1] do
      local running = sums[seg_slot[sg]]
      total = total + seg_sign[sg] * (running[seg_to[sg]] - running[seg_from[sg] - 1])
    end
  end
  prefix[j] = total
end
local counts = {}
for j = 1, n - 1 do
  counts[j] = prefix[j + 1] - prefix[j]
end
return counts
