-- Move partition positions forward, never back: a member that lost a partition and lands a
-- late batch for it cannot undo the new owner's progress.
-- KEYS[1]: the positions hash. ARGV: partition, next offset, partition, next offset, ...
-- Returns how many positions moved.
local moved = 0
for i = 1, #ARGV, 2 do
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or -1)
  if tonumber(ARGV[i + 1]) > stored then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    moved = moved + 1
  end
end
return moved
