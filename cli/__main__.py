"""`python -m cli` runs the `mailgw` command (used by tests that start the gateway process)."""

from cli.main import main

main()
