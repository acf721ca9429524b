-- The count tree's read side (projector/keys.py names its keys; its constants TREE_SIZES,
-- TREE_TOP, NODE_MARK, NODE_KEY are injected above): prefix(x) = the org's events before second
-- x. The upper hash gives the whole top-level buckets before x; then, from the top, each
-- node over x gives its children before x (interior) or its seconds before x (leaf, the
-- last). A node is read only while x is inside its bucket, not at its start, so one count
-- reads at most TREE_TOP + 1 hashes per edge. tests/support/oracles.py is the Python twin.
-- Numbers stay below 2^53, so Lua's doubles hold them exactly.
local function tree_reader(upper_key)
  local floor = math.floor
  local base = string.sub(upper_key, 1, -2)
  local cache = {}
  -- A hash as (fields, values, interior), read once per script.
  local function node(key)
    local got = cache[key]
    if not got then
      local raw = redis.call('HGETALL', key)
      local fields, values, interior = {}, {}, false
      for i = 1, #raw, 2 do
        local f = tonumber(raw[i])
        if f then
          fields[#fields + 1] = f
          values[#values + 1] = tonumber(raw[i + 1])
        elseif raw[i] == NODE_MARK then
          interior = true
        end
      end
      got = {fields, values, interior}
      cache[key] = got
    end
    return got
  end
  local function below(got, limit)
    local total, fields, values = 0, got[1], got[2]
    for i = 1, #fields do
      if fields[i] < limit then total = total + values[i] end
    end
    return total
  end
  return function(x)
    local size = TREE_SIZES[TREE_TOP + 1]
    local total = below(node(upper_key), floor(x / size))
    for level = TREE_TOP, 1, -1 do
      size = TREE_SIZES[level + 1]
      local index = floor(x / size)
      local offset = x - index * size
      if offset == 0 then return total end
      local got = node(string.format(NODE_KEY, base, level, index))
      if not got[3] then return total + below(got, offset) end
      total = total + below(got, floor(offset / TREE_SIZES[level]))
    end
    return total
  end
end

-- count_range(keys, first, last): the org's events in [first, last] (inclusive seconds);
-- keys: the COUNT_KEYS of projector/keys.py `count_keys` (the upper hash first).
local function count_range(keys, first, last)
  local prefix = tree_reader(keys[1])
  return prefix(last + 1) - prefix(first)
end
