"""Policy loader: good files load, bad files are refused with file:line and what is wrong."""

import hashlib
from datetime import date
from pathlib import Path

import pytest

from policies import PolicyError, load_policy, resolve_policy_path

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "phutho.toml"

GOOD = """\
[policy]
name = "test"

[[rule]]
id = "r1"
reason = "official_document_to_webmail"
action = "reject"
notify = ["sender"]
smtp = { vi = "Khong gui", en = "Not allowed" }
[rule.when]
sender_class = ["internal"]
recipients_any = ["free_webmail"]
official_document = true
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_policy_loads() -> None:
    p = load_policy(SHIPPED)
    assert [r.reason for r in p.rules][:5] == [
        "secret_marking", "auto_forward", "official_document_to_webmail", "webmail_attachment",
        "inbound_official_via_webmail"]
    assert p.version == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    for r in p.rules:
        assert r.smtp.vi.isascii() and r.smtp.en.isascii() and r.notice.vi


def test_good_file(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, GOOD))
    assert p.rules[0].when.recipients_any == {"free_webmail"}
    assert p.rules[0].source.endswith("p.toml:4")


def test_version_covers_every_file(tmp_path: Path) -> None:
    a = write(tmp_path, GOOD, "a.toml")
    b = write(tmp_path, "[policy]\nmonitor = true\n", "b.toml")
    p = load_policy([a, b])
    assert p.version == hashlib.sha256(a.read_bytes() + b.read_bytes()).hexdigest()
    assert p.monitor


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        # TOML syntax error: tomllib's line
        (lambda t: t.replace('action = "reject"', 'action = "reject'), 7, "TOML syntax"),
        # unknown key in a rule
        (lambda t: t.replace('notify = ["sender"]', 'notfy = ["sender"]'), 8,
         "unknown key 'notfy'"),
        # unknown action
        (lambda t: t.replace('action = "reject"', 'action = "block"'), 7, "'block' is not one of"),
        # unknown fact / condition
        (lambda t: t.replace("official_document = true", "oficial_document = true"), 13,
         "unknown condition or fact 'oficial_document'"),
        # unknown address class
        (lambda t: t.replace('["free_webmail"]', '["webmail"]'), 12, "unknown address class"),
        # fact with a non-boolean value
        (lambda t: t.replace("official_document = true", 'official_document = "yes"'), 13,
         "expected true or false"),
        # unknown notify target
        (lambda t: t.replace('["sender"]', '["boss"]'), 8, "'boss' is not one of"),
        # SMTP text must be ASCII
        (lambda t: t.replace("Khong gui", "Không gửi"), 9, "ASCII"),
        # bad reason code
        (lambda t: t.replace('reason = "official_document_to_webmail"', 'reason = "Bad Reason"'),
         6, "reason"),
        # unknown top-level table
        (lambda t: t + "\n[rules]\nx = 1\n", 15, "unknown table 'rules'"),
        # duplicate rule id
        (lambda t: t + "\n" + t[t.index("[[rule]]"):], 16, "duplicate rule id 'r1'"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, change, line: int, message: str) -> None:
    path = write(tmp_path, change(GOOD))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    text = str(err.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text


EXEMPTION = """
[[exemption]]
id = "portal"
justification = "Cổng dịch vụ công"
rules = ["r1"]
senders = ["ketqua@phutho.gov.vn"]
expires = {expires}
"""


def test_exemption_dates(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, GOOD + EXEMPTION.format(expires="2027-06-30")))
    assert p.exemptions[0].expires == date(2027, 6, 30)
    p = load_policy(write(tmp_path, GOOD + EXEMPTION.format(expires='"2027-06-30"')))
    assert p.exemptions[0].expires == date(2027, 6, 30)


@pytest.mark.parametrize(
    ("expires", "line", "message"),
    [
        ('"2027-02-30"', 20, "is not a date"),
        ("2027-13-01", 20, "TOML syntax"),
        ("2027-06-30T10:00:00", 20, "expected a date"),
    ],
)
def test_bad_exemption_date(tmp_path: Path, expires: str, line: int, message: str) -> None:
    path = write(tmp_path, GOOD + EXEMPTION.format(expires=expires))
    with pytest.raises(PolicyError, match=message) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}:{line}:")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (EXEMPTION.format(expires="2027-01-01").replace('rules = ["r1"]', 'rules = ["r9"]'),
         "unknown rule 'r9'"),
        (EXEMPTION.format(expires="2027-01-01").replace('justification = "Cổng dịch vụ công"\n',
                                                        ""), "justification"),
        ('\n[[unit]]\nname = "snv"\nactions = { r1 = "nuke" }\n', "'nuke' for 'r1' is not one of"),
        ('\n[[unit]]\nname = "snv"\ndisable = ["r7"]\n', "unknown rule 'r7'"),
    ],
)
def test_bad_units_and_exemptions(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(write(tmp_path, GOOD + extra))


def test_missing_file_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[policy]\nname = "\xe9"\n')
    with pytest.raises(PolicyError, match=r"latin1\.toml:2: not UTF-8"):
        load_policy(bad)


def test_relative_path_resolves_to_the_package(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_policy_path("policies/phutho.toml").resolve() == SHIPPED.resolve()
    assert load_policy("policies/phutho.toml").rules
