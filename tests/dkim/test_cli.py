"""`mailgw dkim` and `mailgw dns` through click's CliRunner: keygen record format, dns, check
against a DNS server on 127.0.0.1 (published / missing / mismatched), the rotate flow, remove,
SPF/DMARC records and one-line errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import stat

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from cli.main import root
from mailgw.dkim import keys
from tests.dkim.conftest import DOMAIN, config_file

ZONE_LINE = re.compile(r'^(\S+)\. 3600 IN TXT \( ((?:"[^"]*" ?)+)\)$')


def run(cfg, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(root, ["--config", str(cfg), *args], env=env)


async def arun(cfg, *args: str, env: dict[str, str] | None = None) -> Result:
    # The DNS server runs on this event loop: the blocking command runs in a thread.
    return await asyncio.to_thread(run, cfg, *args, env=env)


def _active(base) -> str:
    entry = keys.load_manifest(base, DOMAIN).active("rsa")
    assert entry is not None
    return entry.selector


def _record(output: str) -> tuple[str, list[str]]:
    line = next(x for x in output.splitlines() if x and not x.startswith(";"))
    m = ZONE_LINE.match(line)
    assert m, line
    return m.group(1), re.findall(r'"([^"]*)"', m.group(2))


def test_keygen_writes_a_0600_key_and_prints_the_record(tmp_path) -> None:
    cfg = config_file(tmp_path)
    result = run(cfg, "dkim", "keygen", "--domain", DOMAIN, "--selector", "2026a")
    assert result.exit_code == 0, result.output
    path = tmp_path / "dkim" / DOMAIN / "2026a.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    name, chunks = _record(result.output)
    assert name == f"2026a._domainkey.{DOMAIN}"
    assert len(chunks) == 2 and all(len(c.encode()) <= 255 for c in chunks)
    assert len(chunks[0]) == 255
    text = "".join(chunks)
    assert text.startswith("v=DKIM1; k=rsa; p=")
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    public = serialization.load_der_public_key(base64.b64decode(text.split("p=")[1]))
    assert public.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert key.key_size == 2048  # type: ignore[union-attr]


def test_keygen_ed25519_and_dns_lists_every_key(tmp_path) -> None:
    cfg = config_file(tmp_path)
    assert run(cfg, "dkim", "keygen", "--domain", DOMAIN, "--selector", "r1").exit_code == 0
    result = run(cfg, "dkim", "keygen", "--domain", DOMAIN, "--selector", "e1",
                 "--algorithm", "ed25519")
    assert result.exit_code == 0, result.output
    _, chunks = _record(result.output)
    assert chunks[0].startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(chunks[0].split("p=")[1])) == 32
    listed = run(cfg, "dkim", "dns").output
    assert "r1._domainkey.phutho.gov.vn." in listed and "e1._domainkey.phutho.gov.vn." in listed
    assert list(tmp_path.joinpath("dkim", DOMAIN).glob(".manifest.*")) == []  # atomic write
    data = json.loads(run(cfg, "dkim", "dns", "--json").output)
    assert [(r["selector"], r["algorithm"], r["state"]) for r in data] == [
        ("r1", "rsa", "active"), ("e1", "ed25519", "active")]
    assert "".join(chunks) == data[1]["record"]


@pytest.mark.parametrize("args,message", [
    (["dkim", "keygen", "--domain", "gmail.com", "--selector", "a"], "not a signing domain"),
    (["dkim", "keygen", "--domain", DOMAIN, "--selector", "a_b"], "one DNS label"),
    (["dkim", "dns"], "no DKIM keys yet"),
    (["dkim", "rotate", "--domain", DOMAIN, "--activate"], "no pending rsa key"),
    (["dns", "records", "--domain", DOMAIN, "--ip", "nonsense"], "not an IP address"),
])
def test_user_errors_are_one_line(tmp_path, args, message) -> None:
    result = run(config_file(tmp_path), *args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.strip().count("\n") == 0
    assert "Traceback" not in result.output


def test_keygen_twice_same_selector_refused(tmp_path) -> None:
    cfg = config_file(tmp_path)
    run(cfg, "dkim", "keygen", "--domain", DOMAIN, "--selector", "a")
    result = run(cfg, "dkim", "keygen", "--domain", DOMAIN, "--selector", "a")
    assert result.exit_code == 1 and "exists already" in result.output


def _published(base, domain: str, selector: str) -> str:
    entry = keys.load_manifest(base, domain).find(selector)
    assert entry is not None
    key = keys.load_private_key(keys.key_path(base, domain, entry), domain, entry.algorithm)
    return keys.txt_record(entry.algorithm, key)


async def test_check_published_missing_mismatched(tmp_path, dns_zone) -> None:
    cfg = config_file(tmp_path, '[dkim]\ndomains = ["lamthao.phutho.gov.vn"]\n')
    base = tmp_path / "dkim"
    for domain, sel in ((DOMAIN, "good"), ("lamthao.phutho.gov.vn", "wrong")):
        keys.add_key(base, domain, sel, "rsa")
    keys.add_key(base, DOMAIN, "e1", "ed25519")  # never published
    other = keys.txt_record("rsa", keys.generate("rsa"))
    server = await dns_zone({
        f"good._domainkey.{DOMAIN}": _published(base, DOMAIN, "good"),
        "wrong._domainkey.lamthao.phutho.gov.vn": other,
    })
    ns = f"127.0.0.1:{server.port}"
    result = await arun(cfg, "dkim", "check", "--nameserver", ns, "--json")
    assert result.exit_code == 1  # active keys not published
    got = {(s["domain"], s["selector"]): s["status"]
           for s in json.loads(result.output[:result.output.rindex("]") + 1])}
    assert got == {(DOMAIN, "good"): "published", (DOMAIN, "e1"): "missing",
                   ("lamthao.phutho.gov.vn", "wrong"): "mismatched"}
    assert "2 active key(s) not published correctly" in result.output
    # One domain only, with the nameserver from the environment.
    result = await arun(cfg, "dkim", "check", "--domain", DOMAIN, env={"MAILGW_NAMESERVER": ns})
    assert "good" in result.output and "published" in result.output
    assert "lamthao" not in result.output
    # Without --nameserver: gateway.nameservers from the configuration.
    cfg = config_file(tmp_path, f'nameservers = ["{ns}"]\n')
    result = await arun(cfg, "dkim", "check", "--domain", DOMAIN)
    assert "published" in result.output, result.output


async def test_rotate_flow(tmp_path, dns_zone) -> None:
    cfg = config_file(tmp_path)
    base = tmp_path / "dkim"
    assert run(cfg, "dkim", "keygen", "--domain", DOMAIN, "--selector", "old").exit_code == 0
    rotated = run(cfg, "dkim", "rotate", "--domain", DOMAIN)
    assert rotated.exit_code == 0, rotated.output
    name, chunks = _record(rotated.output)
    new = name.split(".")[0]
    assert re.fullmatch(r"rsa\d{6}", new)
    manifest = keys.load_manifest(base, DOMAIN)
    assert _active(base) == "old"
    assert [k.selector for k in manifest.pending()] == [new]
    # A second rotate while one is pending is refused.
    assert "already pending" in run(cfg, "dkim", "rotate", "--domain", DOMAIN).output

    # Not published yet: --activate refuses, signing stays with the old key.
    empty = await dns_zone({f"old._domainkey.{DOMAIN}": _published(base, DOMAIN, "old")})
    early = await arun(cfg, "dkim", "rotate", "--domain", DOMAIN, "--activate",
                       "--nameserver", f"127.0.0.1:{empty.port}")
    assert early.exit_code == 1 and "not published yet (missing" in early.output
    assert _active(base) == "old"

    # Published: `dkim check` switches signing to it; the old key stays listed, retired.
    server = await dns_zone({f"old._domainkey.{DOMAIN}": _published(base, DOMAIN, "old"),
                             f"{new}._domainkey.{DOMAIN}": "".join(chunks)})
    checked = await arun(cfg, "dkim", "check", "--nameserver", f"127.0.0.1:{server.port}")
    assert checked.exit_code == 0, checked.output
    assert "signing switches to it now" in checked.output
    manifest = keys.load_manifest(base, DOMAIN)
    assert _active(base) == new
    assert [k.state for k in manifest.keys if k.selector == "old"] == ["retired"]
    assert "old._domainkey" in run(cfg, "dkim", "dns").output

    # The active key cannot be removed; the retired one can (file deleted too).
    assert "is the active key" in run(cfg, "dkim", "remove", "--domain", DOMAIN,
                                      "--selector", new).output
    removed = run(cfg, "dkim", "remove", "--domain", DOMAIN, "--selector", "old")
    assert removed.exit_code == 0, removed.output
    assert not (base / DOMAIN / "old.key").exists()
    assert "old._domainkey" not in run(cfg, "dkim", "dns").output


async def test_rotate_activate_when_published(tmp_path, dns_zone) -> None:
    cfg = config_file(tmp_path)
    base = tmp_path / "dkim"
    run(cfg, "dkim", "keygen", "--domain", DOMAIN, "--selector", "old")
    name, chunks = _record(run(cfg, "dkim", "rotate", "--domain", DOMAIN).output)
    server = await dns_zone({name: "".join(chunks)})
    done = await arun(cfg, "dkim", "rotate", "--domain", DOMAIN, "--activate",
                      "--nameserver", f"127.0.0.1:{server.port}")
    assert done.exit_code == 0, done.output
    assert "old retired" in done.output
    assert _active(base) == name.split(".")[0]


def test_dns_records_spf_and_dmarc_explained(tmp_path) -> None:
    result = run(config_file(tmp_path), "dns", "records", "--domain", DOMAIN,
                 "--ip", "203.0.113.5", "--ip", "2001:db8::/64")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f'{DOMAIN}. 3600 IN TXT "v=spf1 ip4:203.0.113.5 ip6:2001:db8::/64 -all"' in out
    assert (f'_dmarc.{DOMAIN}. 3600 IN TXT "v=DMARC1; p=quarantine; pct=100; adkim=r; aspf=r; '
            f'rua=mailto:dmarc-reports@{DOMAIN}"') in out
    assert out.count("; VI: ") == 2 and out.count("; EN: ") == 2
    assert "máy chủ nhận" in out
    data = json.loads(run(config_file(tmp_path), "dns", "records", "--domain", DOMAIN,
                          "--dmarc-policy", "none", "--json").output)
    assert [r["kind"] for r in data] == ["SPF", "DMARC"]
    assert data[0]["text"] == "v=spf1 mx -all" and "p=none" in data[1]["text"]
