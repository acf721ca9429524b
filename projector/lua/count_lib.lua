-- count_range(keys, first, last): one org's counters summed over the inclusive range
-- [first, last] (epoch seconds). The decomposition into aligned buckets is done here, so the
-- caller sends 2 numbers instead of ~200 fields; the layout's constants (LEVEL_SIZES, DAY,
-- ...) are injected from projector/keys.py, and tests/support/oracles.py is the Python twin.
-- keys: day hash of first's day, day hash of last's day, block hash of first's day, block
-- hash of last's day, the upper-levels hash (projector/keys.py `count_keys` names them).
-- Numbers stay below 2^53, so Lua's doubles hold them exactly.
local function count_range(keys, first, last)
  local floor = math.floor
  local first_day = floor(first / DAY)
  local first_block = floor(first_day / DAYS_PER_BLOCK)
  local fields = {{}, {}, {}, {}, {}}

  local function add(level, index)
    local slot, field
    if level <= 2 then
      local per_day = (level == 0 and DAY) or (level == 1 and MINUTES_PER_DAY) or HOURS_PER_DAY
      local day = floor(index / per_day)
      local within = index - day * per_day
      if level == 0 then field = within
      elseif level == 1 then field = -1 - within
      else field = -1 - MINUTES_PER_DAY - within end
      slot = (day == first_day) and 1 or 2
    elseif level == 3 then
      local block = floor(index / DAYS_PER_BLOCK)
      field = index - block * DAYS_PER_BLOCK
      slot = (block == first_block) and 3 or 4
    else
      field = 4 * index + (level - 4)
      slot = 5
    end
    local list = fields[slot]
    list[#list + 1] = string.format('%d', field)
  end

  local top = #LEVEL_SIZES - 1
  local lo, hi = first, last + 1
  local done = false
  for level = 0, top - 1 do
    local size, up = LEVEL_SIZES[level + 1], LEVEL_SIZES[level + 2]
    local lo_up = math.ceil(lo / up) * up
    local hi_up = floor(hi / up) * up
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
    local size = LEVEL_SIZES[top + 1]
    for i = lo / size, hi / size - 1 do add(top, i) end
  end

  local total = 0
  for k = 1, 5 do
    local list = fields[k]
    if #list > 0 then
      local vals = redis.call('HMGET', keys[k], unpack(list))
      for i = 1, #list do
        if vals[i] then total = total + tonumber(vals[i]) end
      end
    end
  end
  return total
end
