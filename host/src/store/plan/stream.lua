-- stream-add: the host's own script (plan/stream.rs builds every call; no
-- plan can call it by name). Adds an entry to a capped stream and keeps
-- the stream expiring, in one command: its expiry is set only when it
-- would move by more than a hundredth of the TTL, so a busy stream costs
-- Redis one XADD and one PTTL per entry, not a PEXPIRE (a write) each.
-- KEYS[1]: the stream. ARGV: the approximate MAXLEN, the TTL in ms, then
-- the entry's field/value pairs.
-- Every stream lives between 99% and 100% of the TTL after its last entry;
-- a stream without expiry (made elsewhere) gets one at its first entry.
-- Returns the entry's id.
local key, ttl = KEYS[1], tonumber(ARGV[2])
local id = redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
local left = redis.call('PTTL', key)
if left < 0 or ttl - left > ttl / 100 then
  redis.call('PEXPIRE', key, ttl)
end
return id
