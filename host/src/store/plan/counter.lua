-- counter-add: the host's own script (plan/counter.rs builds every call;
-- no plan can call it by name). Adds to a counter in one command, refuses
-- an add that would take it past a cap, and gives a counter without an
-- expiry (one the add made) its TTL.
-- KEYS[1]: the counter. ARGV: INCRBY or INCRBYFLOAT, the amount, the cap
-- ('' for none), the TTL in ms.
-- Redis does the adding, so what a counter may hold and which amounts it
-- takes are its rules: its error reply ends the script before anything is
-- written. A refused add puts the old value back as it was (KEEPTTL keeps
-- its expiry), or removes the counter the add made. The cap is compared
-- with what Redis stored, as Lua numbers (doubles: exact to 2^53).
-- Returns {value, 1 if added else 0}: the new value as the command answers
-- it (an integer, or a string for INCRBYFLOAT); when refused, the old one
-- as stored (a string), or 0 when there was none (not false: a RESP3
-- client would get a boolean for it).
local cmd = ARGV[1]
if cmd ~= 'INCRBY' and cmd ~= 'INCRBYFLOAT' then
  return redis.error_reply('ERR counter-add: no such command ' .. tostring(cmd))
end
local key = KEYS[1]
local old = redis.call('GET', key)
local new = redis.call(cmd, key, ARGV[2])
if ARGV[3] ~= '' then
  local by, cap, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(new)
  if (by > 0 and now > cap) or (by < 0 and now < cap) then
    if old then
      redis.call('SET', key, old, 'KEEPTTL')
    else
      redis.call('DEL', key)
    end
    return {old or 0, 0}
  end
end
if redis.call('PTTL', key) == -1 then
  redis.call('PEXPIRE', key, ARGV[4])
end
return {new, 1}
