"""Stage `decide`: the verdict from the facts (Policy.evaluate; monitor mode, unit overrides
and exemptions are the policy's job).

Only records the verdict on the Mail: the violation record is written in the acceptance
transaction (mailgw.violations.enforce), and only after that commit does the pipeline answer,
550 with the reference for a reject (mailgw.pipeline.runner).
"""

from __future__ import annotations

from mailgw.pipeline.mail import Mail
from mailgw.violations.enforce import VN_OFFSET, Enforcement


def run(mail: Mail, enforcement: Enforcement) -> None:
    if mail.facts is None:
        # classify always sets facts or raises; a missing record is a bug, never an allow.
        raise RuntimeError("decide: no facts")
    # Exemption expiry dates are Vietnamese calendar dates.
    verdict = enforcement.policy.evaluate(mail.facts, today=(mail.received_at + VN_OFFSET).date())
    mail.verdict = verdict.action
    mail.verdict_detail.update(
        verdict.as_json(), unit=mail.identity.get("unit", "unknown"),
        notify=list(verdict.notify), smtp_text=verdict.smtp_text, notice_vi=verdict.notice_vi,
        notice_en=verdict.notice_en, monitored=verdict.monitored,
        intended_action=verdict.intended_action, exemptions=list(verdict.exemptions))
    mail.note("decide", verdict.action, reasons=list(verdict.reasons), rules=list(verdict.rules))
