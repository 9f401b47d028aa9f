"""The `mailgw` command line: thin click commands that parse, call `mailgw`/`policies`, print."""
