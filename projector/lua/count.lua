#!lua flags=no-writes
-- Sum one org's counters over the inclusive range [ARGV[1], ARGV[2]] (epoch seconds).
-- The decomposition into aligned buckets is projector/buckets.py's, done here so the caller
-- sends 2 numbers instead of ~200 fields; tests/integration/test_store.py pins the two.
-- KEYS: day hash of start's day, day hash of end's day, block hash of start's day, block
-- hash of end's day, the upper-levels hash (projector/keys.py names them).
-- Numbers stay below 2^53, so Lua's doubles hold them exactly.
local SIZES = {1, 60, 3600, 86400, 2764800, 44236800, 707788800, 11324620800}
local DAY, MINUTES, HOURS, DAYS_PER_BLOCK = 86400, 1440, 24, 32
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local first_day, first_block = math.floor(first / DAY), math.floor(first / DAY / DAYS_PER_BLOCK)
local fields = {{}, {}, {}, {}, {}}

local function add(level, index)
  local slot, field
  if level <= 2 then
    local per_day = (level == 0 and DAY) or (level == 1 and MINUTES) or HOURS
    local day = math.floor(index / per_day)
    local within = index - day * per_day
    if level == 0 then field = within
    elseif level == 1 then field = -1 - within
    else field = -1 - MINUTES - within end
    slot = (day == first_day) and 1 or 2
  elseif level == 3 then
    local block = math.floor(index / DAYS_PER_BLOCK)
    field = index - block * DAYS_PER_BLOCK
    slot = (block == first_block) and 3 or 4
  else
    field = 4 * index + (level - 4)
    slot = 5
  end
  local list = fields[slot]
  list[#list + 1] = string.format('%d', field)
end

local lo, hi = first, last + 1
local done = false
for level = 0, 6 do
  local size, up = SIZES[level + 1], SIZES[level + 2]
  local lo_up = math.ceil(lo / up) * up
  local hi_up = math.floor(hi / up) * up
  if lo_up >= hi_up then
    for i = lo / size, hi / size - 1 do add(level, i) end
    done = true
    break
  end
  for i = lo / size, lo_up / size - 1 do add(level, i) end
  for i = hi_up / size, hi / size - 1 do add(level, i) end
  lo, hi = lo_up, hi_up
end
if not done then
  local size = SIZES[8]
  for i = lo / size, hi / size - 1 do add(7, i) end
end

local total = 0
for k = 1, 5 do
  local list = fields[k]
  if #list > 0 then
    local vals = redis.call('HMGET', KEYS[k], unpack(list))
    for i = 1, #list do
      if vals[i] then total = total + tonumber(vals[i]) end
    end
  end
end
return total
