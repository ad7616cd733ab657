-- wrk script: each request is the next line of a file, "PATH<TAB>COOKIE" (the cookie may be empty).
-- Usage: wrk -t2 -c16 -d15s -s bench/requests.lua http://127.0.0.1:PORT -- FILE THREADS HOST
-- Thread i of n takes lines i, i+n, i+2n, ... so no two requests share a sign-in token.
-- done() prints one line "BENCH_JSON {...}" for bench/wrk.py; tokens and cookies are never printed.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  host = args[3]
  lines = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id and line ~= "" then
      local tab = string.find(line, "\t", 1, true)
      if tab then
        lines[#lines + 1] = { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) }
      else
        lines[#lines + 1] = { line, "" }
      end
    end
    i = i + 1
  end
  index = 0
  wrapped = 0
end

function request()
  index = index + 1
  if index > #lines then
    index = 1
    wrapped = wrapped + 1
  end
  local item = lines[index]
  local headers = { ["Host"] = host, ["User-Agent"] = "billportal-bench/wrk" }
  if item[2] ~= "" then
    headers["Cookie"] = item[2]
  end
  return wrk.format("GET", item[1], headers)
end

function done(summary, latency, requests)
  local wrapped_total, available = 0, 0
  for _, thread in ipairs(threads) do
    wrapped_total = wrapped_total + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "p999": %d, "mean": %.1f, "max": %d}, '
      .. '"wrapped": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, wrapped_total))
end
