"""Inbound authentication for the MX listener: SPF, DKIM and DMARC checks and what follows.

Pure logic plus DNS, no SMTP: the MX listener calls `check_message` in a worker thread once DATA
is complete, strips forged `Authentication-Results` with `remove_ours`, prepends the verdict's
header lines and maps the decisions to replies (`temporary` -> 451 4.4.3, `action`).
"""

from __future__ import annotations

from mailgw.inbound.dnslookup import DnsTempError, make_resolver
from mailgw.inbound.headers import remove_ours
from mailgw.inbound.verdict import InboundVerdict, check_message

__all__ = ["DnsTempError", "InboundVerdict", "check_message", "make_resolver", "remove_ours"]
