"""The pipeline: one `Mail` object flows through named stages.

Before the reply (during DATA): parse -> identify -> classify -> decide, then the message is
committed to the store (enqueue) and only then answered 250. After acceptance, from the store and
idempotently: archive -> transform (headers; DKIM signing last) -> delivery.
"""
