-- Apply one org's increments atomically, together with the org's per-partition offsets.
-- The layout follows projector/keys.py, whose constants (TREE_SIZES, TREE_TOP, SPLIT_AT, ...)
-- are injected above this script at load time; tests/support/oracles.py is the Python twin.
--
-- KEYS: [1] offsets hash, [2] upper hash, then the dedup directory of each generation in
--       the header (its buckets are named here, DEDUP_KEY: they depend on the directory).
--       The count tree's nodes are named here from the upper hash's name (NODE_KEY): which
--       ones an event reaches depends on the splits stored, and a split writes the children
--       of a node; all carry the org's hash tag, so they share the slot of KEYS.
-- ARGV[1]: one packed string (few large arguments cost far less to send than many):
--       header `<i8i8i8i4i4` window, now, slack, np, ng;
--       np partitions (i4); ng dedup generations (i8); then per
--       increment, in batch order, `<c16i8i4i8i8` digest, second, partition, offset, seen_at.
-- ARGV[2 .. np + 1]: the offsets-hash field of each partition, in header order.
-- Returns "applied duplicates already_applied min_second max_second": the seconds span
-- the increments applied now or by an earlier attempt (-1 -1 when there were none).

local CHUNK = 1000 -- fields per HMGET/HSET: unpack() is bounded by Lua's C stack
local RECORD = '<c16i8i4i8i8'
local FEW = 16
local floor, call, unpack_struct = math.floor, redis.call, struct.unpack
local blob = ARGV[1]

local window, now, slack, np, ng, pos = unpack_struct('<i8i8i8i4i4', blob)
local field_of, stored = {}, {}
for i = 1, np do
  local p
  p, pos = unpack_struct('<i4', blob, pos)
  field_of[p] = ARGV[i + 1]
  stored[p] = tonumber(call('HGET', KEYS[1], ARGV[i + 1]) or -1)
end

-- The dedup window: per generation G (seen_at // window) an extendible hash table. Its
-- directory (KEYS[2 + i], a string) holds 2^D bytes, byte i the depth l of the bucket that
-- holds digests whose top D bits are i; the bucket is the hash DEDUP_KEY(G, l, top l bits),
-- digest's first DEDUP_FIELD_BYTES -> seen_at - G * window. A bucket over DEDUP_SPLIT_AT
-- fields splits in two by its next bit (the directory doubles when l = D), so every bucket
-- stays a small listpack however busy the org.
local dir_key, dirs = {}, {}
for i = 1, ng do
  local gen
  gen, pos = unpack_struct('<i8', blob, pos)
  dir_key[gen] = KEYS[2 + i]
end
local tree_base = string.sub(KEYS[2], 1, -2)
local function directory(gen)
  local d = dirs[gen]
  if d == nil then
    d = (dir_key[gen] and call('GET', dir_key[gen])) or false
    dirs[gen] = d
  end
  return d
end
local function top_bits(d, bits)
  return floor(unpack_struct('>I4', d) / 2 ^ (32 - bits))
end
local function bucket_of(gen, d)
  local dir = directory(gen)
  if not dir then return nil end
  local depth = 0
  while 2 ^ depth < #dir do depth = depth + 1 end
  local l = string.byte(dir, top_bits(d, depth) + 1)
  return string.format(DEDUP_KEY, tree_base, gen, l, top_bits(d, l)), l
end

-- Pass 1: drop what an earlier attempt applied; collect the lookups in the neighbouring
-- generations (an event's own generation is checked by HSETNX as it is recorded).
local skipped, lo, hi = 0, -1, -1
local top = {}
local n, digests, secs, seens, gens = 0, {}, {}, {}, {}
local function span(sec)
  if lo < 0 or sec < lo then lo = sec end
  if sec > hi then hi = sec end
end
local lookups = {} -- bucket key -> list of fields
local function look(gen, d)
  local key = bucket_of(gen, d)
  if key then
    local list = lookups[key]
    if not list then
      list = {gen}
      lookups[key] = list
    end
    list[#list + 1] = string.sub(d, 1, DEDUP_FIELD_BYTES)
  end
end
while pos <= #blob do
  local d, sec, p, off, seen
  d, sec, p, off, seen, pos = unpack_struct(RECORD, blob, pos)
  if off <= stored[p] then
    skipped = skipped + 1
    span(sec)
  else
    if off > (top[p] or -1) then top[p] = off end
    local gen = floor(seen / window)
    n = n + 1
    digests[n], secs[n], seens[n], gens[n] = d, sec, seen, gen
    look(gen - 1, d)
    look(gen + 1, d)
  end
end

local found = {} -- field -> seen_at stored in a neighbouring generation (or counted now)
for key, list in pairs(lookups) do
  local start = list[1] * window
  for j = 2, #list, CHUNK do
    local last = math.min(j + CHUNK - 1, #list)
    local vals = call('HMGET', key, unpack(list, j, last))
    for q = 1, #vals do
      if vals[q] then
        local f = list[j + q - 1]
        local t = found[f] or {}
        found[f] = t
        t[#t + 1] = tonumber(vals[q]) + start
      end
    end
  end
end

-- Record a digest in its own generation: true if it was there already. Creates the
-- generation's directory on its first write.
local grown = {} -- bucket key -> {gen, depth}
local function record(gen, d, seen)
  if not directory(gen) then
    call('SET', dir_key[gen], '\0')
    dirs[gen] = '\0'
  end
  local key, l = bucket_of(gen, d)
  local fresh = call('HSETNX', key, string.sub(d, 1, DEDUP_FIELD_BYTES), seen - gen * window)
  if fresh == 1 then grown[key] = {gen, l, d} end
  return fresh == 0
end

local split_bucket
function split_bucket(key, gen, l, d)
  local dir = directory(gen)
  local depth = 0
  while 2 ^ depth < #dir do depth = depth + 1 end
  if l == depth then
    local doubled = {}
    for i = 1, #dir do
      local c = string.sub(dir, i, i)
      doubled[#doubled + 1] = c .. c
    end
    dir = table.concat(doubled)
    depth = depth + 1
  end
  local prefix = top_bits(d, l)
  local raw = call('HGETALL', key)
  local halves = {{}, {}}
  for q = 1, #raw, 2 do
    local side = top_bits(raw[q] .. '\0\0\0\0', l + 1) % 2 + 1
    local h = halves[side]
    h[#h + 1] = raw[q]
    h[#h + 1] = raw[q + 1]
  end
  call('DEL', key)
  local width = 2 ^ (depth - l) -- directory entries of the bucket that split
  local first = prefix * width
  dir = string.sub(dir, 1, first) .. string.rep(string.char(l + 1), width)
    .. string.sub(dir, first + width + 1)
  dirs[gen] = dir
  call('SET', dir_key[gen], dir)
  local expire = math.max((gen + 2) * window, now) + slack
  for side = 1, 2 do
    local half = halves[side]
    if #half > 0 then
      local child = string.format(DEDUP_KEY, tree_base, gen, l + 1, prefix * 2 + side - 1)
      for j = 1, #half, 2 * CHUNK do
        call('HSET', child, unpack(half, j, math.min(j + 2 * CHUNK - 1, #half)))
      end
      call('EXPIREAT', child, expire)
      if #half / 2 > DEDUP_SPLIT_AT and l + 1 < 32 then split_bucket(child, gen, l + 1, half[1]) end
    end
  end
end

-- The count tree (projector/keys.py): an event adds one to its top-level bucket in the upper
-- hash, one to its child's total in every interior node above it, and one to its second in
-- the leaf it reaches.
local nodes, leaves, upper, is_interior = {}, {}, {}, {}
local function bump(map, id, field)
  local t = map[id]
  if not t then
    t = {}
    map[id] = t
  end
  t[field] = (t[field] or 0) + 1
end
local function interior(key)
  local known = is_interior[key]
  if known == nil then
    known = call('HEXISTS', key, NODE_MARK) == 1
    is_interior[key] = known
  end
  return known
end
local function count_event(sec)
  bump(upper, 0, floor(sec / TREE_SIZES[TREE_TOP + 1]))
  for level = TREE_TOP, 1, -1 do
    local size = TREE_SIZES[level + 1]
    local index = floor(sec / size)
    local key = string.format(NODE_KEY, tree_base, level, index)
    local offset = sec - index * size
    if level > 1 and interior(key) then
      bump(nodes, key, floor(offset / TREE_SIZES[level]))
    else
      bump(nodes, key, offset)
      leaves[key] = {level, index}
      return
    end
  end
end

-- A leaf over SPLIT_AT fields becomes interior: its seconds move to leaves of its children
-- (split again while over SPLIT_AT), it keeps their totals. Every hash is written afresh,
-- so one a batch pushed past the listpack limit is compact again.
local function hset_all(key, pairs_list)
  for j = 1, #pairs_list, 2 * CHUNK do
    call('HSET', key, unpack(pairs_list, j, math.min(j + 2 * CHUNK - 1, #pairs_list)))
  end
end
local function split(key, level, index)
  local raw = call('HGETALL', key)
  local child_size = TREE_SIZES[level]
  local ratio = TREE_SIZES[level + 1] / child_size
  local children, totals, order = {}, {}, {}
  for q = 1, #raw, 2 do
    local offset, value = tonumber(raw[q]), tonumber(raw[q + 1])
    local j = floor(offset / child_size)
    local list = children[j]
    if not list then
      list = {}
      children[j] = list
      totals[j] = 0
      order[#order + 1] = j
    end
    list[#list + 1] = offset - j * child_size
    list[#list + 1] = value
    totals[j] = totals[j] + value
  end
  call('DEL', key)
  local mine = {NODE_MARK, 1}
  for _, j in ipairs(order) do
    mine[#mine + 1] = j
    mine[#mine + 1] = totals[j]
  end
  hset_all(key, mine)
  is_interior[key] = true
  for _, j in ipairs(order) do
    local child = string.format(NODE_KEY, tree_base, level - 1, index * ratio + j)
    local list = children[j]
    hset_all(child, list)
    is_interior[child] = false
    if level - 1 > 1 and #list / 2 > SPLIT_AT then split(child, level - 1, index * ratio + j) end
  end
end

-- Pass 2, in batch order: decide duplicates, aggregate the counters per field.
local applied, dups = 0, 0
local written = {}
for i = 1, n do
  local d, seen, gen = digests[i], seens[i], gens[i]
  local dup = false
  for _, t0 in ipairs(found[string.sub(d, 1, DEDUP_FIELD_BYTES)] or {}) do
    if math.abs(seen - t0) <= window then
      dup = true
      break
    end
  end
  -- Anything already in the own generation is within the window: a duplicate. HSETNX
  -- checks and records in one call, and sees what this call recorded before.
  if not dup then dup = record(gen, d, seen) end
  if dup then
    dups = dups + 1
  else
    applied = applied + 1
    written[gen] = true
    local f = string.sub(d, 1, DEDUP_FIELD_BYTES)
    local t = found[f] or {}
    found[f] = t
    t[#t + 1] = seen -- a later event of this batch in the next generation sees it
    local sec = secs[i]
    span(sec)
    count_event(sec)
  end
end

-- A few fields: one HINCRBY each (no replies to build). Many (a busy org): read-modify-
-- write, two calls per hash instead of thousands.
local function add(key, agg)
  local fields = {}
  for f in pairs(agg) do fields[#fields + 1] = f end
  if #fields <= FEW then
    for _, f in ipairs(fields) do call('HINCRBY', key, f, agg[f]) end
    return
  end
  for j = 1, #fields, CHUNK do
    local last = math.min(j + CHUNK - 1, #fields)
    local olds = call('HMGET', key, unpack(fields, j, last))
    local args = {}
    for q = j, last do
      args[#args + 1] = fields[q]
      args[#args + 1] = (tonumber(olds[q - j + 1]) or 0) + agg[fields[q]]
    end
    call('HSET', key, unpack(args))
  end
end
for key, agg in pairs(nodes) do add(key, agg) end
if upper[0] then add(KEYS[2], upper[0]) end
for key, node in pairs(leaves) do
  if node[1] > 1 and call('HLEN', key) > SPLIT_AT then split(key, node[1], node[2]) end
end

for key, where in pairs(grown) do
  local gen, l, d = where[1], where[2], where[3]
  if l < 32 and call('HLEN', key) > DEDUP_SPLIT_AT then split_bucket(key, gen, l, d) end
end
for gen in pairs(written) do
  -- Generation g is consulted until generation g + 1 ends; a replay long after that
  -- (a rebuild) still needs it for `slack` seconds of wall-clock time.
  local expire = math.max((gen + 2) * window, now) + slack
  call('EXPIREAT', dir_key[gen], expire)
end
for key, where in pairs(grown) do
  -- (a bucket that split is gone: its halves got their expiry as they were written)
  call('EXPIREAT', key, math.max((where[1] + 2) * window, now) + slack)
end

local offs = {}
for p, off in pairs(top) do
  offs[#offs + 1] = field_of[p]
  offs[#offs + 1] = off
end
if #offs > 0 then call('HSET', KEYS[1], unpack(offs)) end

return string.format('%d %d %d %d %d', applied, dups, skipped, lo, hi)
