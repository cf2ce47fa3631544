-- POST one event
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"tick","asset":"BTC","price":64000.5}'
