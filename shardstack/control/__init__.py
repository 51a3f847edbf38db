"""Operating a running stack from outside: the gateway's admin client, the token file
`shardstack up` leaves for it, and scenario files (seeded fault timelines)."""
