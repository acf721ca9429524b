-- KEYS: count_range's COUNT_KEYS hashes. ARGV: first, last (inclusive epoch seconds).
return count_range(KEYS, tonumber(ARGV[1]), tonumber(ARGV[2]))
