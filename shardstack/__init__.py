"""shardstack: a shard simulator and fan-out gateway for studying high-concurrency backends.

The services are the top-level packages `gateway` and `shard_sim`; both stand on the
kernel, `shardstack.common`. The rest of this package is the operator's side: `cli`,
`launcher` (the local stack), `control` (admin client, scenarios) and `bench`.
"""

__version__ = "0.1.0"
