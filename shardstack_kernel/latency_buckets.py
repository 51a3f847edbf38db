"""Histogram buckets for every latency the stack exports, gateway and shards alike.

Seconds, 250 µs to 30 s in 1-2-5 steps: a loopback shard answers in well under a
millisecond, a slow or hanging one is cut at a timeout of seconds. Neighbouring bounds
are at most 2.5x apart, which bounds the error of histogram_quantile().
"""

LATENCY_BUCKETS_S = (
    0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
)  # fmt: skip
