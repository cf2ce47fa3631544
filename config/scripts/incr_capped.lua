-- A counter that stops at a cap and always expires.
-- KEYS[1]: the counter. ARGV: increment, cap, ttl in ms.
-- sluice: ttl-ms ARGV[3]
-- Returns the new value (never above the cap).
local v = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
local cap = tonumber(ARGV[2])
if v > cap then
  redis.call('SET', KEYS[1], cap, 'KEEPTTL')
  v = cap
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return v
