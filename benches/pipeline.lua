-- HTTP/1.1 pipelining for wrk (the TechEmpower-style script).
--
--   wrk -t1 -c256 -d10s -s benches/pipeline.lua http://127.0.0.1:PORT/plaintext -- 16
--
-- Every write sends DEPTH (default 16) copies of the same GET request in one
-- buffer; wrk waits for all DEPTH responses on that connection before it
-- writes the next batch. wrk counts each parsed response as one request, so
-- "Requests/sec" is responses per second, directly comparable across servers.

init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()  -- method, path and headers come from the URL / -H
  end
  req = table.concat(r)
end

request = function()
  return req
end
