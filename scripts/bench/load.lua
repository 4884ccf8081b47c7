-- wrk load script shared by every benchmark target (scripts/bench.sh).
--
-- Each request is a keep-alive GET with HTTP Basic auth for one of N users
-- (user1..userN, password "pw", default N = 1000) on one of three paths:
-- /orders/<i>, /users/<i>, /other. Request i uses user (i mod N)+1 and path
-- (i mod 3): with N not a multiple of 3 the sequence walks through all 3N
-- user/path pairs before repeating. The requests are formatted once in init(),
-- so request() costs wrk a table lookup, not string building.
--
-- done() prints one machine-readable line, "BENCHJSON {...}", with the totals,
-- wrk's error counters (status = responses with status > 399) and the latency
-- percentiles in microseconds from wrk's full latency histogram.
--
-- Usage: wrk -t1 -c64 -d10s -s load.lua http://127.0.0.1:PORT -- [users|@FILE] [close]
-- @FILE (user_key_cost.sh, issue #17): user u's Authorization value is line u
-- of FILE instead, and there are as many users as lines: "Bearer <token>"
-- (every token a different string, so a cache has to hold all of them to
-- help), or "Basic …" followed by a tab and the value of an X-Pad header (a
-- Basic request as long as a Bearer one).
-- With "close" every request carries Connection: close (one request per
-- connection: with https://, one TLS handshake per request; wrk offers the
-- previous session on each reconnect, so it is a resumption whenever the
-- server issues session tickets).

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
      .. (b and b64chars:sub(c3 + 1, c3 + 1) or "=")
      .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local requests_list = {}
local count = 0
local position = 0

-- The Authorization (and X-Pad) header of user u.
local function auth_headers(lines, u)
  if not lines then return { ["Authorization"] = "Basic " .. base64("user" .. u .. ":pw") } end
  local authorization, pad = lines[u]:match("^([^\t]*)\t?(.*)$")
  local headers = { ["Authorization"] = authorization }
  if pad ~= "" then headers["X-Pad"] = pad end
  return headers
end

function init(args)
  local lines
  if args[1] and args[1]:sub(1, 1) == "@" then
    lines = {}
    for line in io.lines(args[1]:sub(2)) do lines[#lines + 1] = line end
  end
  local users = lines and #lines or tonumber(args[1]) or 1000
  local close = args[2] == "close"
  for i = 0, users * 3 - 1 do
    local u = (i % users) + 1
    local p = i % 3
    local path
    if p == 0 then
      path = "/orders/" .. u
    elseif p == 1 then
      path = "/users/" .. u
    else
      path = "/other"
    end
    local headers = auth_headers(lines, u)
    if close then headers["Connection"] = "close" end
    requests_list[#requests_list + 1] = wrk.format("GET", path, headers)
  end
  count = #requests_list
  -- Threads start at different points of the sequence.
  position = ((thread_index or 0) * 1009) % count
end

function request()
  position = position + 1
  if position > count then position = 1 end
  return requests_list[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
