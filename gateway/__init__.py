"""The fan-out gateway: one request in, one call to each shard out, one aggregate back."""
