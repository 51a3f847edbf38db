-- wrk script: count answers by status and print one JSON line when the run ends.
--   wrk -t2 -c2000 -d20s --timeout 3s -s benchmarks/statuses.lua URL
-- "timeout" counts requests with no answer within --timeout; requests still in flight
-- when the run ends are in no count.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    '{"answers":%d,"duration_s":%.3f,"statuses":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"latency_ms":{"50":%.3f,"90":%.3f,"99":%.3f,"99.9":%.3f,"max":%.3f}}\n',
    summary.requests, summary.duration / 1e6, table.concat(parts, ","),
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, latency.max / 1e3))
end
