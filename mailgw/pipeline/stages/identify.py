"""Stage `identify`: who sends (authenticated user or trusted host) and whether they may.

The header From must be one of the addresses the sender owns: nobody sends as the Chairman but the
Chairman. The organisation directory (unit, position) plugs in here (issue: policy enforcement);
until then the unit is derived from the sender's subdomain, else "unknown".
"""

from __future__ import annotations

from mailgw.pipeline.mail import Mail
from mailgw.pipeline.outcome import StageReject
from mailgw.smtp import replies


def unit_from_address(address: str, domains: list[str]) -> str:
    """`x@lamthao.phutho.gov.vn` -> "lamthao"; an address of the main domain -> its domain."""
    domain = address.rpartition("@")[2].lower()
    for d in domains:
        if domain == d:
            return d
        if domain.endswith("." + d):
            return domain[: -len(d) - 1]
    return "unknown"


def run(mail: Mail, owned: frozenset[str], domains: list[str]) -> None:
    """`owned`: the addresses the session may use (the user's, its aliases, or the host's)."""
    if mail.session.listener == "submission":
        for address in mail.header_from:
            if address not in owned:
                raise StageReject(replies.HEADER_FROM_NOT_OWNED,
                                  f"header From {address} not owned")
    mail.identity = {
        "user": mail.session.auth_user or mail.session.trusted_host,
        "unit": unit_from_address(mail.mail_from, domains),
    }
    mail.note("identify", "ok", **mail.identity)
