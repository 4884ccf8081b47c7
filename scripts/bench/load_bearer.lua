-- wrk load script for user-key jwt (issue #17, scripts/bench/user_key_cost.sh):
-- load.lua's request sequence (user i, path i mod 3 of /orders/<u>, /users/<u>,
-- /other) with "Authorization: Bearer <token of user u>" instead of Basic.
-- Tokens are read, one per line (line u = user u), from the file given as the
-- first script argument. Every token is a different string, so a cache has to
-- hold all of them to help.
--
-- Usage: wrk -t1 -c32 -d8s -s load_bearer.lua http://127.0.0.1:PORT -- tokens.txt

local requests_list = {}
local count = 0
local position = 0

function init(args)
  local tokens = {}
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  local users = #tokens
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
    requests_list[#requests_list + 1] =
      wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[u] })
  end
  count = #requests_list
end

function request()
  position = position + 1
  if position > count then position = 1 end
  return requests_list[position]
end
