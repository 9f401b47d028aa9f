"""Stage `classify`: the flat facts record from the message bytes and the envelope.

Runs during DATA where the pipeline runs its stages (a worker thread bounded by
`policy.timeout`, or the event loop for small outbound text: runner.runs_inline); a large
message's content is handed to a worker process (mailgw.pipeline.offload). The sender's unit
comes from the organisation directory, else from the subdomain, else "unknown"; it goes
into the facts (per-unit policy overrides) and into the identity (violation records). Any
exception here propagates: the edge answers 451 (fail closed), never "no objection".
"""

from __future__ import annotations

from mailgw.pipeline.mail import Mail, is_large
from mailgw.pipeline.offload import ContentProcesses
from mailgw.violations.enforce import Enforcement


def run(mail: Mail, enforcement: Enforcement,
        offload: ContentProcesses | None = None) -> None:
    """`offload`: worker processes for big messages (see mailgw.pipeline.offload)."""
    unit, source = enforcement.sender_unit(mail)
    mail.identity["unit"] = unit
    mail.identity["unit_source"] = source
    if offload is not None and is_large(len(mail.raw)):
        mail.facts = offload.classify(mail.raw, mail.mail_from, mail.rcpt_tos, mail.direction,
                                      unit)
    else:
        mail.facts = enforcement.policy.classify(
            mail.raw, mail.mail_from, mail.rcpt_tos, addresses=enforcement.addresses,
            direction=mail.direction, sender_unit=unit, only_needed=True)
    mail.note("classify", "ok", unit=unit, unit_source=source,
              documents=mail.facts.documents_examined)
