"""The labelled corpus (../shared/corpus, relative to the repository) sent through the real
gateway: each message gets its labelled action and reason, end to end (SMTP reply, register).

A message the SMTP edge refuses before DATA (aiosmtpd refuses a trailing-dot domain in RCPT) is
not delivered: it passes only if it is labelled "block", and the test prints it.
One test account owns every envelope sender and header From of the corpus (as aliases), so the
submission listener accepts them all; no rule of the shipped policy depends on the listener.
Skipped, visibly, where the corpus is absent.
"""

from __future__ import annotations

import json
import re
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import pytest
from sqlalchemy import select

from mailgw.store.db import session_factory
from mailgw.store.models import Violation
from tests.enforcement.gateway import ROOT, enforcing_gateway, send

CORPUS = ROOT.parent / "shared" / "corpus"
pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(not (CORPUS / "labels.json").exists(),
                                 reason=f"corpus not found at {CORPUS}")]


def _owned(labels: list[dict]) -> list[str]:
    out = set()
    for case in labels:
        out.add(case["mail_from"].lower())
        head = BytesHeaderParser().parsebytes((CORPUS / case["file"]).read_bytes())
        out.update(a.lower() for _, a in getaddresses(head.get_all("From") or []) if a)
    return sorted(a for a in out if a)


def test_corpus_through_the_gateway(tmp_path) -> None:
    labels = json.loads((CORPUS / "labels.json").read_text(encoding="utf-8"))
    wrong, refused = [], []
    with enforcing_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}",
                           aliases=_owned(labels)) as (gw, _sink):
        for case in labels:
            raw = (CORPUS / case["file"]).read_bytes()
            code, reply = send(gw, raw, case["mail_from"], case["rcpt_to"])
            with session_factory(gw.engine)() as s:
                if code == 550:
                    ref = re.search(r"\(ref (V-\d{4}-\d{6})\)", reply)
                    v = s.scalar(select(Violation).where(
                        Violation.reference == (ref.group(1) if ref else "")))
                elif code == 250:
                    v = s.scalar(select(Violation).where(
                        Violation.queue_id == reply.rsplit(" ", 1)[1]))
                elif code // 100 == 5 and reply.startswith(("MAIL", "RCPT")):
                    # Refused by the SMTP edge before DATA (e.g. aiosmtpd will not take a
                    # trailing-dot domain): never delivered, so only a "block" case may be.
                    refused.append(f"{case['file']}: {code} {reply}")
                    if case["expected"] != "block":
                        wrong.append((case["file"], f"refused before DATA: {code} {reply}"))
                    continue
                else:
                    wrong.append((case["file"], f"reply {code} {reply}"))
                    continue
            action = v.action if v is not None else "allow"
            got = "block" if action in ("reject", "quarantine") else action
            reasons = list(v.reasons) if v is not None else []
            if (got, reasons) != (case["expected"], case["reasons"]):
                wrong.append((case["file"], f"got {got} {reasons}, expected "
                                            f"{case['expected']} {case['reasons']}"))
            if got == "block" and action == "reject":
                assert code == 550, (case["file"], reply)
    assert not wrong, "\n".join(f"{f}: {why}" for f, why in wrong)
    print(f"corpus: {len(labels)} messages through the gateway, all as labelled; "
          f"{len(refused)} blocked by the edge before DATA: {refused}")
