-- POST an mget of 100 keys drawn from r0..r99999: the keys rotate over a
-- keyspace far larger than any near cache, so every key is read from Redis.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local keys = {}
  for i = 1, 100 do
    keys[i] = '"r' .. math.random(0, 99999) .. '"'
  end
  return wrk.format(nil, nil, nil, '{"keys":[' .. table.concat(keys, ",") .. ']}')
end
