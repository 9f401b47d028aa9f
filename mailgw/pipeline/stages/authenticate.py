"""Stage `authenticate` (inbound mail only): is the sender who the message says it is?

Runs after `parse`, before `identify`, on mail from the MX listener: SPF, DKIM and DMARC through
`mailgw.inbound` (DNS lookups bounded in time; this stage runs in a worker thread). A DNS
failure that could change the outcome is a 451 4.4.3 (the sending server retries); an outside
domain's DMARC reject is a 550; everything else becomes the message's inbound verdict (quarantine
for a spoofed internal sender, flag for a look-alike domain), which `decide` may only make
stricter. Authentication-Results fields with our authserv-id are removed when they arrive from
outside (parse has removed X-Mailgw-* already), then ours are added.
"""

from __future__ import annotations

from mailgw.inbound import InboundChecker
from mailgw.pipeline.mail import Mail
from mailgw.pipeline.outcome import StageReject
from mailgw.smtp import replies
from policies import ACTIONS  # allow < flag < quarantine < reject


def stricter(a: str, b: str) -> str:
    """The stricter of two actions (allow < flag < quarantine < reject)."""
    return a if ACTIONS.index(a) >= ACTIONS.index(b) else b


def run(mail: Mail, checker: InboundChecker | None) -> None:
    if mail.direction != "inbound" or checker is None:
        return
    verdict = checker.check(mail.raw, client_ip=mail.session.peer_ip, helo=mail.session.helo,
                            mail_from=mail.mail_from)
    detail = verdict.to_dict()
    if verdict.temporary:
        mail.note("authenticate", "temporary", reason=verdict.temporary_reason)
        raise StageReject(replies.DNS_TEMPFAIL, verdict.temporary_reason)
    if verdict.action == "reject":
        mail.note("authenticate", "reject", reasons=verdict.reasons)
        raise StageReject(replies.DMARC_REJECT, ", ".join(verdict.reasons))
    mail.raw = checker.remove_ours(mail.raw)
    mail.prepend.extend(verdict.header_lines())
    mail.inbound_action = verdict.action
    mail.verdict_detail["inbound"] = {k: detail[k] for k in ("spf", "dkim", "dmarc", "reasons",
                                                              "lookalike_of", "warning")}
    mail.note("authenticate", verdict.action, reasons=verdict.reasons)


def merge(mail: Mail) -> None:
    """After `decide`: the content policy may make the inbound verdict stricter, never milder."""
    inbound = mail.verdict_detail.get("inbound")
    if not inbound:
        return
    mail.verdict = stricter(mail.verdict, mail.inbound_action)
    reasons = list(mail.verdict_detail.get("reasons", []))
    mail.verdict_detail["reasons"] = reasons + [r for r in inbound["reasons"] if r not in reasons]
