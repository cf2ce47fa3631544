-- GET /MGET/w:rA/w:rB/... of 100 keys drawn from w:r0..w:r99999 (the
-- gateway's rotating mget, as webdis takes it).
request = function()
  local keys = {}
  for i = 1, 100 do
    keys[i] = "w:r" .. math.random(0, 99999)
  end
  return wrk.format("GET", "/MGET/" .. table.concat(keys, "/"))
end
