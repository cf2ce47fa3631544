-- webdis: SET {path}{0..999} <value> PX 3600000
local base = wrk.path
request = function()
  return wrk.format("GET", base .. math.random(0, 999) .. "/asset-BTC-price-64000.5/PX/3600000")
end
