-- PUT {path}{0..999} with a small JSON object
local base = wrk.path
local headers = { ["Content-Type"] = "application/json" }
local body = '{"asset":"BTC","price":64000.5}'
request = function() return wrk.format("PUT", base .. math.random(0, 999), headers, body) end
