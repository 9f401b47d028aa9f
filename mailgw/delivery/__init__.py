"""Delivery: workers that take due queue entries from the store and hand them to the next hop."""
