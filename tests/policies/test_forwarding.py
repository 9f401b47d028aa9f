"""Auto-forward indicators from the top-level header."""

import pytest

from policies.classifiers.forwarding import find_auto_forward


@pytest.mark.parametrize(
    ("headers", "found"),
    [
        ([("Auto-Submitted", "auto-forwarded")], True),
        ([("Auto-Submitted", "Auto-Generated")], True),
        ([("auto-submitted", "auto-generated; owner-email=a@b.vn")], True),
        ([("Auto-Submitted", "auto-replied")], False),
        ([("Auto-Submitted", "no")], False),
        ([("Resent-From", "a@phutho.gov.vn")], True),
        ([("Resent-To", "b@yahoo.com")], True),
        ([("X-Forwarded-To", "b@gmail.com")], True),
        ([("X-Forwarded-For", "a@phutho.gov.vn b@gmail.com")], True),
        ([("Subject", "Fwd: Kế hoạch"), ("From", "a@phutho.gov.vn")], False),
        ([("X-MS-Exchange-Generated-Message-Source", "Mailbox Rules Agent")], False),
        ([], False),
    ],
)
def test_indicators(headers: list[tuple[str, str]], found: bool) -> None:
    assert bool(find_auto_forward(headers)) is found


def test_evidence_quotes_the_field() -> None:
    (ev,) = find_auto_forward([("Auto-Submitted", "auto-forwarded")])
    assert (ev.part, ev.signal, ev.text) == ("header", "auto_submitted",
                                             "Auto-Submitted: auto-forwarded")
