"""shardstack: a shard simulator and fan-out gateway for studying high-concurrency backends.

This package is the operator's side: the CLI, the local launcher, and the error
vocabulary the gateway and the shards share.
"""

__version__ = "0.1.0"
