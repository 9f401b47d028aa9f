"""Which messages have their pre-acceptance stages run on the event loop: small outbound text
only, never mail whose content can decode to more than its size, inbound mail (DNS waits) or
while the directory cache must read the store."""

from __future__ import annotations

import pytest

from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.pipeline.runner import INLINE_MAX_BYTES, runs_inline

HEAD = b"From: a@phutho.gov.vn\r\nTo: b@example.org\r\nSubject: x\r\n"


def _mail(raw: bytes) -> Mail:
    return Mail(SessionInfo(listener="submission"), "a@phutho.gov.vn", ["b@example.org"], raw)


TEXT = HEAD + b"\r\n" + b"Noi dung thu binh thuong.\r\n" * 100


def test_small_text_runs_inline() -> None:
    assert runs_inline(_mail(TEXT), inbound=False, directory_fresh=True)


@pytest.mark.parametrize("raw", [
    # base64 in any case, anywhere (a part header, an encoded word): may inflate (zip, office)
    HEAD + b"Content-Transfer-Encoding: BASE64\r\n\r\nUEsDBA==\r\n",
    HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n",
    # a uuencoded block in the text is decoded by extraction too
    HEAD + b"\r\nSee attached:\r\nbegin 644 report.zip\r\nM4$L#!`\r\n`\r\nend\r\n",
    # too big, even as plain text
    HEAD + b"\r\n" + b"x" * INLINE_MAX_BYTES,
])
def test_expanding_or_large_mail_goes_to_a_thread(raw: bytes) -> None:
    assert not runs_inline(_mail(raw), inbound=False, directory_fresh=True)


def test_inbound_mail_and_a_stale_directory_go_to_a_thread() -> None:
    assert not runs_inline(_mail(TEXT), inbound=True, directory_fresh=True)
    assert not runs_inline(_mail(TEXT), inbound=False, directory_fresh=False)
