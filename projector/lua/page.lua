#!lua flags=no-writes
-- One page of snapshots, newest first. KEYS: the records hash, the sorted set of the filter.
-- ARGV: offset, limit. Returns {total, id, record, id, record, ...}: consistent, one trip.
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local total = redis.call('ZCARD', KEYS[2])
local out = {total}
if offset < total then
  for _, id in ipairs(redis.call('ZREVRANGE', KEYS[2], offset, offset + limit - 1)) do
    local record = redis.call('HGET', KEYS[1], id)
    if record then
      out[#out + 1] = id
      out[#out + 1] = record
    end
  end
end
return out
