"""`python -m cli` runs the `mailgw` command (used by tests that start the gateway process)."""

from cli.main import main

if __name__ == "__main__":  # not when a spawned worker process imports this module again
    main()
