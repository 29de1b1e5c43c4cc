-- wrk script for bench/soak.sh: a weighted mix of the API through the gateway, and a
-- count of answers by status class. Reads TOKEN, USER_ID and OTHER_IDS (comma
-- separated) from the environment.

local token = os.getenv("TOKEN")
local me = os.getenv("USER_ID")
local others = {}
for id in string.gmatch(os.getenv("OTHER_IDS") or "", "[^,]+") do
  others[#others + 1] = id
end

local json = { ["Content-Type"] = "application/json" }
local authed = { ["Authorization"] = "Bearer " .. token }
local authed_json = {
  ["Authorization"] = "Bearer " .. token,
  ["Content-Type"] = "application/json",
}

local counter = 0
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  ok, client_errors, server_errors, other = 0, 0, 0, 0
  math.randomseed(os.time() + math.floor(os.clock() * 1e6) + #threads)
end

local function any_other()
  return others[math.random(#others)]
end

-- { weight, function returning method, path, headers, body }
local mix = {
  { 30, function() return "GET", "/api/users/" .. any_other(), authed, nil end },
  { 15, function() return "GET", "/api/users?limit=20", authed, nil end },
  { 15, function()
      counter = counter + 1
      return "PUT", "/api/users/" .. me, authed_json,
        '{"bio":"soak ' .. counter .. '"}'
    end },
  { 20, function() return "POST", "/api/validate", json, '{"token":"' .. token .. '"}' end },
  -- 4xx on purpose: bad id, unknown id, bad token, someone else's profile, no token.
  { 4, function() return "GET", "/api/users/not-a-uuid", authed, nil end },
  { 4, function() return "GET", "/api/users/00000000-0000-4000-8000-000000000000", authed, nil end },
  { 4, function() return "POST", "/api/validate", json, '{"token":"not.a.token"}' end },
  { 4, function() return "PUT", "/api/users/" .. any_other(), authed_json, '{"bio":"x"}' end },
  { 4, function() return "GET", "/api/users", nil, nil end },
}
local total_weight = 0
for _, entry in ipairs(mix) do total_weight = total_weight + entry[1] end

function request()
  local pick = math.random(total_weight)
  for _, entry in ipairs(mix) do
    pick = pick - entry[1]
    if pick <= 0 then
      local method, path, headers, body = entry[2]()
      return wrk.format(method, path, headers, body)
    end
  end
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif status >= 400 and status < 500 then
    client_errors = client_errors + 1
  elseif status >= 500 then
    server_errors = server_errors + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, client_errors = 0, server_errors = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(t) do
      t[key] = t[key] + (thread:get(key) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d duration_s=%.1f rps=%.0f ok_2xx=%d client_4xx=%d server_5xx=%d other=%d " ..
    "socket_connect=%d socket_read=%d socket_write=%d socket_timeout=%d " ..
    "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    t.ok, t.client_errors, t.server_errors, t.other,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
