-- Apply one org's increments atomically, together with the org's per-partition offsets.
-- The bucket fields follow projector/keys.py, whose constants (LEVEL_SIZES, DAY, ...) are
-- injected above this script at load time; tests/support/oracles.py is the Python twin.
--
-- KEYS: [1] offsets hash, [2] upper hash, then one day hash per day, one block hash per
--       block and one dedup hash per code, in the order the header lists them.
-- ARGV[1]: one packed string (few large arguments cost far less to send than many):
--       header `<i8i8i8i4i4i4i4i4` window, now, slack, shards, np, nd, nb, nx;
--       np partitions (i4); nd days, nb blocks, nx codes (i8; code = generation * shards
--       + shard); then per increment, in batch order, `<c16i8i4i8i8` digest, second,
--       partition, offset, seen_at.
-- ARGV[2 .. np + 1]: the offsets-hash field of each partition, in header order.
-- Returns "applied duplicates already_applied min_second max_second": the seconds span
-- the increments applied now or by an earlier attempt (-1 -1 when there were none).

local CHUNK = 1000 -- fields per HMGET/HSET: unpack() is bounded by Lua's C stack
local RECORD = '<c16i8i4i8i8'
local FEW = 16
local floor, call, unpack_struct = math.floor, redis.call, struct.unpack
local blob = ARGV[1]

local window, now, slack, shards, np, nd, nb, nx, pos =
  unpack_struct('<i8i8i8i4i4i4i4i4', blob)
local field_of, stored = {}, {}
for i = 1, np do
  local p
  p, pos = unpack_struct('<i4', blob, pos)
  field_of[p] = ARGV[i + 1]
  stored[p] = tonumber(call('HGET', KEYS[1], ARGV[i + 1]) or -1)
end

local k = 3
local function key_map(count)
  local map = {}
  for _ = 1, count do
    local id
    id, pos = unpack_struct('<i8', blob, pos)
    map[id] = KEYS[k]
    k = k + 1
  end
  return map
end
local day_key = key_map(nd)
local block_key = key_map(nb)
local dedup_key = key_map(nx)

-- Pass 1: drop what an earlier attempt applied; collect the lookups in the neighbouring
-- generations (an event's own generation is checked by HSETNX as it is recorded).
local skipped, lo, hi = 0, -1, -1
local top, lookups = {}, {}
local n, digests, secs, seens, bases, is_base = 0, {}, {}, {}, {}, {}
local function span(sec)
  if lo < 0 or sec < lo then lo = sec end
  if sec > hi then hi = sec end
end
while pos <= #blob do
  local d, sec, p, off, seen
  d, sec, p, off, seen, pos = unpack_struct(RECORD, blob, pos)
  if off <= stored[p] then
    skipped = skipped + 1
    span(sec)
  else
    if off > (top[p] or -1) then top[p] = off end
    local base = floor(seen / window) * shards + string.byte(d, 1) % shards
    n = n + 1
    digests[n], secs[n], seens[n], bases[n] = d, sec, seen, base
    is_base[base] = true
    for code = base - shards, base + shards, 2 * shards do
      local list = lookups[code]
      if not list then
        list = {}
        lookups[code] = list
      end
      list[#list + 1] = d
    end
  end
end

-- A hash no event consults as its previous generation is only ever a next one: it exists
-- only if record times went past its start and stepped back, so one EXISTS usually spares
-- all those lookups.
local ahead, ahead_keys = {}, {}
for code in pairs(lookups) do
  if not is_base[code + shards] then
    ahead[code] = true
    ahead_keys[#ahead_keys + 1] = dedup_key[code]
  end
end
local skip_ahead = #ahead_keys > 0 and call('EXISTS', unpack(ahead_keys)) == 0

local found = {} -- code -> digest -> seen_at stored (or counted by this call)
for code, list in pairs(lookups) do
  local t = {}
  found[code] = t
  if not (skip_ahead and ahead[code]) then
    for j = 1, #list, CHUNK do
      local last = math.min(j + CHUNK - 1, #list)
      local vals = call('HMGET', dedup_key[code], unpack(list, j, last))
      for q = 1, #vals do
        if vals[q] then t[list[j + q - 1]] = tonumber(vals[q]) end
      end
    end
  end
end

-- Pass 2, in batch order: decide duplicates, aggregate the counters per field.
local applied, dups = 0, 0
local written = {}
local days, blocks, upper = {}, {}, {}
local function bump(map, id, field)
  local t = map[id]
  if not t then
    t = {}
    map[id] = t
  end
  t[field] = (t[field] or 0) + 1
end
for i = 1, n do
  local d, seen, base = digests[i], seens[i], bases[i]
  local dup = false
  for code = base - shards, base + shards, 2 * shards do
    local t0 = found[code][d]
    if t0 and math.abs(seen - t0) <= window then
      dup = true
      break
    end
  end
  -- Anything already in the own generation is within the window: a duplicate. HSETNX
  -- checks and records in one call, and sees what this call recorded before.
  if not dup then dup = call('HSETNX', dedup_key[base], d, seen) == 0 end
  if dup then
    dups = dups + 1
  else
    applied = applied + 1
    written[base] = true
    if found[base] then found[base][d] = seen end
    local sec = secs[i]
    span(sec)
    local day = floor(sec / DAY)
    local sod = sec - day * DAY
    bump(days, day, sod)
    bump(days, day, -1 - floor(sod / LEVEL_SIZES[2]))
    bump(days, day, -1 - MINUTES_PER_DAY - floor(sod / LEVEL_SIZES[3]))
    local block = floor(day / DAYS_PER_BLOCK)
    bump(blocks, block, day - block * DAYS_PER_BLOCK)
    for u = 0, UPPER_LEVELS - 1 do bump(upper, 0, 4 * floor(sec / LEVEL_SIZES[5 + u]) + u) end
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
for day, agg in pairs(days) do add(day_key[day], agg) end
for block, agg in pairs(blocks) do add(block_key[block], agg) end
if upper[0] then add(KEYS[2], upper[0]) end

for code in pairs(written) do
  -- Generation g is consulted until generation g + 1 ends; a replay long after that
  -- (a rebuild) still needs it for `slack` seconds of wall-clock time.
  local gen = floor(code / shards)
  call('EXPIREAT', dedup_key[code], math.max((gen + 2) * window, now) + slack)
end

local offs = {}
for p, off in pairs(top) do
  offs[#offs + 1] = field_of[p]
  offs[#offs + 1] = off
end
if #offs > 0 then call('HSET', KEYS[1], unpack(offs)) end

return string.format('%d %d %d %d %d', applied, dups, skipped, lo, hi)
