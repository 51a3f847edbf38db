"""The shard's HTTP routes, one module per concern."""
