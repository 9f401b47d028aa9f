"""Golden test: every message of the shared corpus gets the verdict of labels.json.

The corpus sits in ../shared/corpus next to the repository (CI has it); MAILGW_CORPUS points
elsewhere. Without it the test is skipped, visibly. "block" in the labels is reject or
quarantine.
"""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import root
from policies import load_policy

CORPUS = Path(os.environ.get("MAILGW_CORPUS")
              or Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus")
LABELS = CORPUS / "labels.json"
SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "phutho.toml"

pytestmark = pytest.mark.skipif(not LABELS.is_file(),
                                reason=f"corpus not found at {CORPUS} (set MAILGW_CORPUS)")


def _labels() -> list[dict]:
    if not LABELS.is_file():
        return []
    return json.loads(LABELS.read_text(encoding="utf-8"))


def _as_label(action: str) -> str:
    return "block" if action in ("reject", "quarantine") else action


@pytest.mark.parametrize("label", _labels(), ids=lambda x: x["file"])
def test_cli_verdict_matches_label(label: dict) -> None:
    args = ["policy", "test", str(CORPUS / label["file"]), "--policy", str(SHIPPED),
            "--mail-from", label["mail_from"], "--json"]
    for r in label["rcpt_to"]:
        args += ["--rcpt", r]
    result = CliRunner().invoke(root, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (_as_label(out["action"]), out["reasons"]) == (label["expected"], label["reasons"]), \
        label["note"]
    if label["expected"] != "allow":
        assert out["evidence"], "a verdict other than allow shows its evidence"


def test_all_46_through_the_api() -> None:
    policy = load_policy(SHIPPED)
    addresses = policy.address_classifier(["phutho.gov.vn"])
    wrong = []
    labels = _labels()
    for label in labels:
        raw = (CORPUS / label["file"]).read_bytes()
        v = policy.evaluate(policy.classify(raw, label["mail_from"], label["rcpt_to"],
                                            addresses=addresses))
        if (_as_label(v.action), list(v.reasons)) != (label["expected"], label["reasons"]):
            wrong.append((label["file"], v.action, v.reasons))
    assert len(labels) == 46
    assert wrong == []


ENVELOPES = [  # (mail_from, rcpt_to): the label's own, then every sender/recipient class
    ("chuyenvien@phutho.gov.vn", ["ban.be@gmail.com"]),
    ("chuyenvien@phutho.gov.vn", ["doitac@example.org"]),
    ("chuyenvien@phutho.gov.vn", ["dongnghiep@lamthao.phutho.gov.vn"]),
    ("chuyenvien@phutho.gov.vn", ["doitac@example.org", "ban.be@yahoo.com"]),
    ("nguoi.dan@gmail.com", ["chuyenvien@phutho.gov.vn"]),
    ("doitac@example.org", ["chuyenvien@phutho.gov.vn"]),
]


def test_gateway_facts_give_the_same_verdicts() -> None:
    # The gateway computes only the content facts a rule could use for the envelope; over
    # every corpus message and envelope the verdict must be the full computation's.
    policy = load_policy(SHIPPED)
    addresses = policy.address_classifier(["phutho.gov.vn"])
    differ, skipped = [], 0
    for label in _labels():
        raw = (CORPUS / label["file"]).read_bytes()
        for mail_from, rcpts in [(label["mail_from"], label["rcpt_to"]), *ENVELOPES]:
            full = policy.classify(raw, mail_from, rcpts, addresses=addresses)
            lazy = policy.classify(raw, mail_from, rcpts, addresses=addresses,
                                   only_needed=True)
            skipped += full.official_document and not lazy.official_document
            if policy.evaluate(full) != policy.evaluate(lazy):
                differ.append((label["file"], mail_from, rcpts))
    assert differ == []
    assert skipped > 0  # the shortcut did leave work out somewhere
