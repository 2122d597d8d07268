-- wrk script: POST the PNG file named by the environment variable PNG.
local f = assert(io.open(os.getenv("PNG"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"
