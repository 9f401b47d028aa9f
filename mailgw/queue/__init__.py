"""The durable queue: rows in the store that delivery workers claim, deliver and mark.

`enqueue` writes a message and its per-recipient entries (called inside the listener's commit,
before the 250); `store` holds the worker-side operations (claim with a lease, record results,
park, release); `admin` holds what the `mailgw queue` commands do.
"""
