-- POST the 100-key mget body from $SLUICE_BENCH_MGET
local f = assert(io.open(os.getenv("SLUICE_BENCH_MGET"), "r"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
