-- Record partitions' caught-up times (forward only) and store the topic's caught_up_at.
-- KEYS[1]: the caught-up hash. ARGV[1]: the partitions field, ARGV[2]: the min field,
-- ARGV[3]: the topic's partition count (0: unknown, keep what is stored), then pairs
-- partition, epoch seconds.
-- caught_up_at is the least time over partitions 0 .. count - 1, none until each has one;
-- with no count stored, the least time stored. It is written here, once, so readers (the
-- API's scripts among them) read one field and never recompute it.
-- Returns caught_up_at as a string, or false when unknown.
local key, partitions_field, min_field = KEYS[1], ARGV[1], ARGV[2]
if tonumber(ARGV[3]) > 0 then redis.call('HSET', key, partitions_field, ARGV[3]) end
for i = 4, #ARGV, 2 do
  local stored = tonumber(redis.call('HGET', key, ARGV[i]) or -1)
  if tonumber(ARGV[i + 1]) > stored then redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
local flat = redis.call('HGETALL', key)
local times, declared, least = {}, nil, nil
for i = 1, #flat, 2 do
  local name = flat[i]
  if name == partitions_field then declared = tonumber(flat[i + 1])
  elseif name ~= min_field then times[tonumber(name)] = flat[i + 1] end
end
if declared and declared > 0 then
  for partition = 0, declared - 1 do
    local t = times[partition]
    if not t then least = nil break end
    if not least or tonumber(t) < tonumber(least) then least = t end
  end
else
  for _, t in pairs(times) do
    if not least or tonumber(t) < tonumber(least) then least = t end
  end
end
if least then redis.call('HSET', key, min_field, least) else redis.call('HDEL', key, min_field) end
return least or false
