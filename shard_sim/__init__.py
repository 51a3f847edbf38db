"""The shard simulator: one fake backend shard per process, with controllable latency."""
