"""Policy engine and content classifiers: facts from message bytes, verdicts from facts.

No sockets, no database, no clock: everything here is bytes and data in, data out.
"""
