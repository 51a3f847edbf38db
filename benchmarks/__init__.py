"""The experiments behind docs/benchmarks.md and the design notes' figures. The page and
the throttling runs are modules (`python -m benchmarks.regenerate`,
`python -m benchmarks.throttle`, from the repository's root); the single measurements
(shard_cost.py, connections.py, metrics_cost.py, ...) also run as plain scripts."""
