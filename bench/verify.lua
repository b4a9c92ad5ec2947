-- wrk script: GET /api/v1/verify/{certificate_id}, rotating through the ids listed (one per line) in the file
-- given after `--`; each thread starts at its own offset. An optional second argument paces every connection:
-- it waits that many milliseconds after each answer before its next request (no argument: as fast as it can).
-- done() prints one JSON line (prefixed WRKJSON) with the request count, errors and latency percentiles in
-- microseconds (wrk measures from sending a request to its answer; the pause is not part of it).
--
--   wrk -t2 -c64 -d10s -s bench/verify.lua http://127.0.0.1:8000 -- ids.txt [pause_ms]

local ids = {}
local counter = 0
local pause_ms = 0
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      ids[#ids + 1] = line
    end
  end
  counter = (thread_index or 0) * 7919
  pause_ms = tonumber(args[2] or "0")
end

function delay()
  return pause_ms
end

function request()
  counter = counter + 1
  return wrk.format("GET", "/api/v1/verify/" .. ids[(counter % #ids) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors_status": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_timeout": %d, "mean_us": %.1f, "p50_us": %d, ' ..
    '"p90_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
