-- wrk load script for user-key jwt (issue #17, scripts/bench/user_key_cost.sh):
-- load.lua's request sequence (user i, path i mod 3 of /orders/<u>, /users/<u>,
-- /other) with the Authorization value of user u read from a file, one line
-- per user: "Bearer <token>" (every token a different string, so a cache has
-- to hold all of them to help), or "Basic …" followed by a tab and the value
-- of an X-Pad header (a Basic request as long as a Bearer one).
--
-- Usage: wrk -t1 -c32 -d8s -s load_bearer.lua http://127.0.0.1:PORT -- headers.txt

local requests_list = {}
local count = 0
local position = 0

function init(args)
  local lines = {}
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
  local users = #lines
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
    local authorization, pad = lines[u]:match("^([^\t]*)\t?(.*)$")
    local headers = { ["Authorization"] = authorization }
    if pad ~= "" then headers["X-Pad"] = pad end
    requests_list[#requests_list + 1] = wrk.format("GET", path, headers)
  end
  count = #requests_list
end

function request()
  position = position + 1
  if position > count then position = 1 end
  return requests_list[position]
end
