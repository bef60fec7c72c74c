-- wrk script: POST pre-signed, unique Slack events, then print a JSON summary line.
--
-- Usage: wrk -t <threads> -s ingest_signed.lua <url> -- <requests file> <threads> [delay ms]
-- A delay (per connection, between its requests) holds the load near a fixed rate.
-- Each line of the requests file is "<timestamp>\t<X-Slack-Signature>\t<body>". Every thread
-- takes its own share of the lines, so no event is sent twice until a thread runs out.

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  delay_ms = tonumber(args[3] or "0")
  requests = {}
  local line_no = 0
  for line in io.lines(path) do
    if line_no % nthreads == id then
      local timestamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Slack-Request-Timestamp"] = timestamp,
        ["X-Slack-Signature"] = signature,
      }, body)
    end
    line_no = line_no + 1
  end
  cursor = 0
end

function request()
  cursor = cursor + 1
  return requests[(cursor - 1) % #requests + 1]
end

function delay()
  return delay_ms
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
      .. '"timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
