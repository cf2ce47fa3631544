-- GET {path}{0..999}
local base = wrk.path
request = function() return wrk.format("GET", base .. math.random(0, 999)) end
