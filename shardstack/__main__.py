"""`python -m shardstack`, the same as the `shardstack` command."""

from shardstack.cli import main

main()
