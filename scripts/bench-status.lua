-- wrk script for scripts/bench-status.sh: GET /api/v1/status with a random mix of NIKs.
--
-- KJP_BENCH_NIKS names a file of "NIK|YYYY-MM-DD" lines taken from the decreed stage.
-- Each thread builds 4,000 requests up front (so Lua costs little while measuring):
--   60 % a child in the decree with the right date of birth (recipient or not)
--   15 % an unknown, well-formed NIK (a decree NIK with its serial changed to 9xxx)
--   10 % a child in the decree with a wrong date of birth
--   10 % 15 digits; 5 % letters in the NIK (both 400)
-- Unknown and wrong-date answers are 404, so wrk counts them as "non-2xx": expected.

local paths = {}

function init(args)
  local file = os.getenv("KJP_BENCH_NIKS") or error("set KJP_BENCH_NIKS")
  -- Threads start within the same second: mix in this thread's table address.
  math.randomseed(os.time() + (tonumber(tostring(paths):match("0x(%x+)") or "0", 16) % 100000))
  local known = {}
  for line in io.lines(file) do
    local nik, birth = line:match("^(%d+)|(%d%d%d%d%-%d%d%-%d%d)$")
    if nik then known[#known + 1] = { nik, birth } end
  end
  if #known == 0 then error("no NIK|date lines in " .. file) end
  for i = 1, 4000 do
    local k = known[math.random(#known)]
    local nik, birth = k[1], k[2]
    local r = math.random(100)
    if r <= 60 then
      -- as it is
    elseif r <= 75 then
      nik = nik:sub(1, 12) .. string.format("%04d", math.random(9000, 9999))
    elseif r <= 85 then
      birth = "2001-01-01"
    elseif r <= 95 then
      nik = nik:sub(1, 15)
    else
      nik = nik:sub(1, 14) .. "AB"
    end
    paths[i] = wrk.format("GET", "/api/v1/status?nik=" .. nik .. "&birth_date=" .. birth .. "&year=2025&stage=1")
  end
end

function request()
  return paths[math.random(#paths)]
end

-- One machine-readable line: requests, duration (us), p50, p99, max (us), socket errors, non-2xx.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.0f %.0f %.0f %d %d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
