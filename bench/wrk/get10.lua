-- GET {path}{0..9}
local base = wrk.path
request = function() return wrk.format("GET", base .. math.random(0, 9)) end
