-- webdis: EVALSHA of the same token bucket for one of 1000 subjects
local base = wrk.path
request = function()
  return wrk.format("GET", base .. math.random(0, 999) .. "/1000000000/1000000/1")
end
