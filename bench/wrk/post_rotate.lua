-- POST {path}{0..999}: a rate-limit acquire for one of 1000 subjects
local base = wrk.path
request = function() return wrk.format("POST", base .. math.random(0, 999)) end
