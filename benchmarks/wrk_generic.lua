-- wrk script for benchmarks/bench_webhook.py: signed generic-webhook messages, each one new.
--
--   wrk -t T -c C -d SECONDS -s wrk_generic.lua URL -- BODIES_PREFIX MESSAGE_SECONDS
--
-- wrk's Lua has no HMAC, so the bench writes the signed bodies beforehand: one file per wrk
-- thread, BODIES_PREFIX .. <thread id>, one "sha256=<hex>\t<json body>" line per message, every
-- message_id unique. Each thread sends its own file's lines in order, each line at most once.
--
-- A clean end: wrk stops at -d by closing its sockets, and a message in flight then may be
-- persisted with nobody reading the 2xx, which would blur "persisted == 2xx". So the script
-- sends messages for MESSAGE_SECONDS only (its own monotonic clock), then parks every
-- connection that asks for more on an unfinished request (headers never end: the server reads
-- nothing, runs no handler, stores nothing) and stops its thread once the last message in
-- flight is answered. wrk's -d must leave room for that drain; whatever is still in flight at
-- -d is reported as in_flight. Only message responses complete, so wrk's latency percentiles
-- are message latencies.
--
-- done() prints one line, "KEFU_WRK key=value ...", which the bench parses.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } kefu_timespec;
int clock_gettime(int clk_id, kefu_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("kefu_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- main state: one entry per thread, for done()
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- thread state (globals, so done() can read them with thread:get)
sent, answered, ok, parked, exhausted = 0, 0, 0, 0, 0
t_first, t_last = -1, -1
statuses = ""

local sigs, bodies = {}, {}
local index, message_seconds, deadline, draining = 0, 0, nil, false
local verifying = false
local by_status = {}
local path = "/webhook/shop-system"
local park

function init(args)
  local prefix = assert(args[1], "usage: -- BODIES_PREFIX MESSAGE_SECONDS [PATH]")
  message_seconds = assert(tonumber(args[2]), "MESSAGE_SECONDS must be a number")
  path = args[3] or path
  local file = assert(io.open(prefix .. id, "rb"))
  for line in file:lines() do
    local tab = line:find("\t", 1, true)
    if tab then
      sigs[#sigs + 1] = line:sub(1, tab - 1)
      bodies[#bodies + 1] = line:sub(tab + 1)
    end
  end
  file:close()
  -- headers never end (no blank line): the server waits for the rest, nothing else happens
  -- wrk calls request() once on thread 0's state before the run, only to check the script
  -- (script_verify_request): that call gets a throw-away request, not a message
  verifying = (id == 0)
  park = "GET /healthz HTTP/1.1\r\nHost: " .. wrk.headers["Host"] .. "\r\nX-Kefu-Bench: parked\r\n"
end

local function stop_if_drained()
  if draining and answered == sent then
    wrk.thread:stop()
  end
end

function request()
  if verifying then
    verifying = false
    return wrk.format("GET", "/healthz")
  end
  local t = now()
  if deadline == nil then
    t_first, deadline = t, t + message_seconds
  end
  if t >= deadline or index >= #bodies then
    if t < deadline then
      exhausted = 1 -- ran out of bodies early: the bench reports the run as invalid
    end
    draining = true
    parked = parked + 1
    stop_if_drained()
    return park
  end
  index = index + 1
  sent = sent + 1
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json; charset=utf-8",
    ["X-Kefu-Signature"] = sigs[index],
  }, bodies[index])
end

function response(status, headers, body)
  answered = answered + 1
  t_last = now()
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    by_status[status] = (by_status[status] or 0) + 1
    local parts = {}
    for code, count in pairs(by_status) do
      parts[#parts + 1] = code .. ":" .. count
    end
    statuses = table.concat(parts, ",")
  end
  stop_if_drained()
end

function done(summary, latency, requests)
  local total = { sent = 0, answered = 0, ok = 0, parked = 0, exhausted = 0 }
  local first, last = math.huge, -1
  local per_thread, codes = {}, {}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + thread:get(key)
    end
    per_thread[#per_thread + 1] = thread:get("id") .. ":" .. thread:get("sent")
    local tf, tl = thread:get("t_first"), thread:get("t_last")
    if tf >= 0 and tf < first then first = tf end
    if tl > last then last = tl end
    local s = thread:get("statuses")
    if s ~= "" then codes[#codes + 1] = s end
  end
  local window = (last >= 0 and first < math.huge) and (last - first) or 0
  local e = summary.errors
  io.write(string.format(
    "KEFU_WRK sent=%d answered=%d ok=%d in_flight=%d parked=%d exhausted=%d window_s=%.6f "
      .. "requests=%d duration_us=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d sent_by_thread=%s statuses=%s\n",
    total.sent, total.answered, total.ok, total.sent - total.answered, total.parked, total.exhausted, window,
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(per_thread, ","), (#codes > 0) and table.concat(codes, ",") or "-"))
end
