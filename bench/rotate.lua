-- wrk script: GET a path with a bearer token taken in turn from a file of tokens (one per line).
-- Usage: wrk -s bench/rotate.lua <url> -- <tokens file>
local tokens = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
end

function request()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
