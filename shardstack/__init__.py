"""shardstack: a shard simulator and fan-out gateway for studying high-concurrency backends.

Three top-level packages beside this one hold the rest: the services `gateway` and
`shard_sim`, and the kernel both stand on, `shardstack_kernel`. This package is the
operator's: `cli`, `launcher` (the local stack), `control` (admin client, scenarios) and
`bench`.
"""

from shardstack_kernel import __version__

__all__ = ["__version__"]
