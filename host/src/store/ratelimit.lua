-- Token bucket, one hash per bucket: KEYS[1] = {tokens, ts}.
-- ARGV: capacity, refill rate (tokens per second), cost.
-- Time comes from Redis (TIME), never from a gateway's clock, so every gateway
-- sharing the bucket agrees. The key expires when the bucket would be full
-- again: a full bucket and no bucket are the same thing.
-- Returns {allowed (1/0), tokens left (floor), ms until full, ms until `cost` fits (0 when allowed)}.
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / 1000
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) / rate)
end
local to_full = math.ceil((capacity - tokens) / rate)
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.max(to_full, 1))
return {allowed, math.floor(tokens), to_full, wait}
