"""`shardstack bench`: load, what the server's processes spent on it, and comparisons."""
