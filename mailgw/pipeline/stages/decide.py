"""Stage `decide`: the verdict from the facts (extension point).

Policy enforcement evaluates the policy here and may reject (StageReject with a 550 and a
violation reference), quarantine or flag. Without facts the verdict is allow.
"""

from __future__ import annotations

from mailgw.pipeline.mail import Mail


def run(mail: Mail) -> None:
    mail.verdict = "allow"
    mail.note("decide", "allow")
