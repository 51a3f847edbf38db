"""`shardstack up` without Docker: the stack's plan (which processes, settings and ports),
the supervisor that starts and stops them, and Prometheus beside them."""
