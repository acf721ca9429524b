-- Snapshot records and their indexes (projector/keys.py names every key; all are in the
-- `{#}` slot). `k` is a table of the declared keys: records, by_range, all, c0, c1 (the
-- sets per stored is_complete), org, oc0, oc1 (the org's sets); the org is the one the call
-- concerns, known to the caller before the call.
-- A record is 'org|start|end|count|complete|at|score' (org ids never contain '|').

local function snapshot_keys(base)
  local names = {'records', 'by_range', 'all', 'c0', 'c1', 'org', 'oc0', 'oc1'}
  local k = {}
  for i, name in ipairs(names) do k[name] = KEYS[base + i] end
  return k
end

local function unpack_record(record)
  local f = {}
  for part in string.gmatch(record, '[^|]+') do f[#f + 1] = part end
  return f -- org, start, end, count, complete, at, score
end

local function sets_of(k, complete)
  if complete == '1' then return {k.all, k.c1, k.org, k.oc1} end
  return {k.all, k.c0, k.org, k.oc0}
end

local function unindex(k, id, complete)
  for _, key in ipairs(sets_of(k, complete)) do redis.call('ZREM', key, id) end
end

local function store(k, id, org, s, e, count, complete, at, score)
  redis.call('HSET', k.records, id, table.concat({org, s, e, count, complete, at, score}, '|'))
  for _, key in ipairs(sets_of(k, complete)) do redis.call('ZADD', key, score, id) end
end

local function range_field(org, s, e) return org .. '|' .. s .. '|' .. e end

-- The live generation (projector/keys.py LIVE_FIELD of the generation record) when it is not
-- `expected`: the caller counted, or is about to count, a generation no longer live, so it
-- learns the live one and asks again. nil when `expected` is live.
local function stale_generation(record_key, expected)
  local live = tonumber(redis.call('HGET', record_key, LIVE_FIELD) or FIRST_GENERATION)
  if live ~= tonumber(expected) then return live end
  return nil
end

-- is_complete of a range ending at `e`: once e + grace <= the topic's caught_up_at.
local function complete_at(caught_up_key, caught_up_field, e, grace)
  local caught_up = tonumber(redis.call('HGET', caught_up_key, caught_up_field))
  if caught_up and tonumber(e) + tonumber(grace) <= caught_up then return '1' end
  return '0'
end

-- Create the (org, range) snapshot as new_id, or refresh the stored one with these values.
-- Returns {created (0|1), id} when these values were stored, or {0, id, stored record} when
-- the stored snapshot is newer (a refresh older than it changes nothing).
local function upsert(k, org, s, e, new_id, count, complete, at, score)
  local field = range_field(org, s, e)
  local id = redis.call('HGET', k.by_range, field)
  if id then
    local old = unpack_record(redis.call('HGET', k.records, id))
    if tonumber(old[7]) > tonumber(score) then
      return {0, id, table.concat(old, '|')}
    end
    unindex(k, id, old[5])
    store(k, id, org, s, e, count, complete, at, score)
    return {0, id}
  end
  redis.call('HSET', k.by_range, field, new_id)
  store(k, new_id, org, s, e, count, complete, at, score)
  return {1, new_id}
end
