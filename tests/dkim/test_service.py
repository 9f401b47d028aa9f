"""sign_outgoing: who is signed with which domain and keys, missing keys (refuse / unsigned), the
start-up check, and the transform stage parking a message it must not send."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat

import dkim
import pytest

from mailgw.dkim import DkimError, DkimRefused, check_startup, keys, sign_outgoing
from mailgw.pipeline.post import MessageFacts, Parked, default_stages, run_stages
from tests.dkim.conftest import DOMAIN, MESSAGES, SENDER, dkimpy_verify, make_config

SUB = "lamthao.phutho.gov.vn"


def _published(base, domain: str) -> dict[str, str]:
    out = {}
    for e in keys.load_manifest(base, domain).keys:
        k = keys.load_private_key(keys.key_path(base, domain, e), domain, e.algorithm)
        out[keys.record_name(domain, e.selector)] = keys.txt_record(e.algorithm, k)
    return out


def _tags(signed: bytes) -> list[dict[bytes, bytes]]:
    headers, _ = dkim.rfc822_parse(signed)
    return [dkim.util.parse_tag_value(v) for n, v in headers if n == b"DKIM-Signature"]


@pytest.fixture
def config(tmp_path):
    cfg = make_config(tmp_path)
    keys.add_key(keys.key_dir(cfg), DOMAIN, "s1", "rsa")
    return cfg


def test_outbound_mail_from_a_signing_domain_is_signed(config) -> None:
    out = sign_outgoing(config, MESSAGES["plain"](), SENDER, "outbound")
    [tags] = _tags(out)
    assert (tags[b"d"], tags[b"s"], tags[b"a"]) == (b"phutho.gov.vn", b"s1", b"rsa-sha256")
    assert dkimpy_verify(out, _published(keys.key_dir(config), DOMAIN)) == [True]


@pytest.mark.parametrize("mail_from,direction", [
    (SENDER, "inbound"),
    (SENDER, "local"),
    ("someone@gmail.com", "outbound"),        # envelope sender outside the signing domains
    ("x@phutho-gov.vn", "outbound"),          # lookalike is not a subdomain
])
def test_not_signed(config, mail_from, direction) -> None:
    message = MESSAGES["plain"]()
    assert sign_outgoing(config, message, mail_from, direction) == message


def test_header_from_outside_the_signing_domains_is_not_signed(config) -> None:
    message = MESSAGES["plain"]().replace(b"<chuyenvien@phutho.gov.vn>", b"<ceo@example.com>")
    assert sign_outgoing(config, message, SENDER, "outbound") == message


def test_two_from_headers_are_refused(config) -> None:
    message = b"From: chutich@phutho.gov.vn\r\n" + MESSAGES["plain"]()
    with pytest.raises(DkimRefused, match="2 From"):
        sign_outgoing(config, message, SENDER, "outbound")


def test_bounce_with_null_sender_is_signed_by_its_from(config) -> None:
    message = MESSAGES["plain"]().replace(b"chuyenvien@", b"MAILER-DAEMON@")
    [tags] = _tags(sign_outgoing(config, message, "", "outbound"))
    assert tags[b"d"] == b"phutho.gov.vn"


def test_most_specific_signing_domain_and_its_keys(tmp_path) -> None:
    cfg = make_config(tmp_path, domains=f'["{SUB}"]')
    base = keys.key_dir(cfg)
    keys.add_key(base, DOMAIN, "top", "rsa")
    keys.add_key(base, SUB, "sub", "rsa")
    sub_msg = MESSAGES["plain"]().replace(b"@phutho.gov.vn>", f"@{SUB}>".encode())
    [tags] = _tags(sign_outgoing(cfg, sub_msg, f"a@{SUB}", "outbound"))
    assert (tags[b"d"], tags[b"s"]) == (SUB.encode(), b"sub")
    # A subdomain without its own keys signs with its parent's (relaxed DMARC alignment).
    other = MESSAGES["plain"]().replace(b"@phutho.gov.vn>", b"@thanhson.phutho.gov.vn>")
    [tags] = _tags(sign_outgoing(cfg, other, "a@thanhson.phutho.gov.vn", "outbound"))
    assert (tags[b"d"], tags[b"s"]) == (DOMAIN.encode(), b"top")


def test_dual_signing_when_configured(tmp_path) -> None:
    cfg = make_config(tmp_path, algorithms='["rsa", "ed25519"]')
    keys.add_key(keys.key_dir(cfg), DOMAIN, "r1", "rsa")
    keys.add_key(keys.key_dir(cfg), DOMAIN, "e1", "ed25519")
    out = sign_outgoing(cfg, MESSAGES["smtputf8"](), "ánh.nguyễn@phutho.gov.vn", "outbound")
    assert [t[b"a"] for t in _tags(out)] == [b"rsa-sha256", b"ed25519-sha256"]


def test_disabled_signs_nothing(tmp_path) -> None:
    cfg = make_config(tmp_path, enabled="false")
    message = MESSAGES["plain"]()
    assert sign_outgoing(cfg, message, SENDER, "outbound") == message
    assert check_startup(cfg) == []


def test_missing_key_refuse_is_a_startup_error_naming_domain_and_file(tmp_path) -> None:
    cfg = make_config(tmp_path)
    with pytest.raises(DkimError, match=r"phutho\.gov\.vn: no active rsa DKIM key .*manifest"):
        check_startup(cfg)
    with pytest.raises(DkimError, match="on_missing_key = refuse"):
        sign_outgoing(cfg, MESSAGES["plain"](), SENDER, "outbound")


def test_deleted_or_unreadable_key_names_the_file(config, tmp_path) -> None:
    path = tmp_path / "dkim" / DOMAIN / "s1.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_bytes(b"-----BEGIN RSA PRIVATE KEY-----\ngarbage\n-----END RSA PRIVATE KEY-----\n")
    fresh = make_config(tmp_path)
    with pytest.raises(DkimError, match=rf"{DOMAIN}: DKIM key .*s1\.key is not a usable PEM key"):
        check_startup(fresh)
    path.unlink()
    fresh = make_config(tmp_path)
    with pytest.raises(DkimError, match=rf"{DOMAIN}: DKIM key .*s1\.key cannot be read"):
        check_startup(fresh)


def test_missing_key_unsigned_sends_with_a_warning(tmp_path, caplog) -> None:
    cfg = make_config(tmp_path, on_missing_key='"unsigned"')
    caplog.set_level(logging.WARNING, "mailgw.dkim")
    assert len(check_startup(cfg)) == 1
    message = MESSAGES["plain"]()
    assert sign_outgoing(cfg, message, SENDER, "outbound") == message
    assert "on_missing_key = unsigned" in caplog.text
    assert "no active rsa DKIM key" in caplog.text


def _facts(direction: str = "outbound") -> MessageFacts:
    return MessageFacts("Q1", "<m@x>", direction, SENDER, ("b@example.com",), "chuyenvien",
                        dt.datetime.now(dt.UTC), "allow", {})


def test_transform_stage_signs_last(config) -> None:
    out = run_stages(MESSAGES["plain"](), _facts(), default_stages(config))
    assert out.startswith(b"DKIM-Signature:")
    # Without a config (older callers) the stage changes nothing.
    assert run_stages(MESSAGES["plain"](), _facts(), default_stages()) == MESSAGES["plain"]()


def test_transform_stage_parks_on_missing_key_or_two_from(tmp_path, config) -> None:
    with pytest.raises(Parked) as err:
        run_stages(MESSAGES["plain"](), _facts(), default_stages(make_config(tmp_path / "x")))
    assert err.value.stage == "transform" and "DkimError" in err.value.error
    with pytest.raises(Parked) as err:
        run_stages(b"From: a@phutho.gov.vn\r\n" + MESSAGES["plain"](), _facts(),
                   default_stages(config))
    assert "DkimRefused" in err.value.error


def test_activated_key_is_used_without_restart(config) -> None:
    base = keys.key_dir(config)
    [first] = _tags(sign_outgoing(config, MESSAGES["plain"](), SENDER, "outbound"))
    entry, _ = keys.add_key(base, DOMAIN, "s2", "rsa")
    assert entry.state == "pending"
    [still] = _tags(sign_outgoing(config, MESSAGES["plain"](), SENDER, "outbound"))
    assert first[b"s"] == still[b"s"] == b"s1"
    keys.activate(base, DOMAIN, "s2")
    [now] = _tags(sign_outgoing(config, MESSAGES["plain"](), SENDER, "outbound"))
    assert now[b"s"] == b"s2"


@pytest.fixture
def processes(tmp_path):
    from mailgw.pipeline.offload import ContentProcesses
    from policies import load_policy
    from tests.policies.test_offload import SHIPPED

    workers = ContentProcesses(load_policy(SHIPPED), [DOMAIN], tmp_path / "scratch")
    yield workers
    workers.close()


def _large(extra_lines: int = 40_000) -> bytes:
    # Over 1 MiB (is_large), with trailing blanks that relaxed canonicalisation removes.
    body = b"".join(b"Dong %06d cua van ban dai  \t\r\n" % i for i in range(extra_lines))
    return MESSAGES["plain"]() + body


def test_large_message_is_signed_in_a_worker_process(config, processes) -> None:
    message = _large()
    assert len(message) > 1024 * 1024
    here = sign_outgoing(config, message, SENDER, "outbound")
    there = sign_outgoing(config, message, SENDER, "outbound", processes)
    # The worker computed it: the body hash and header list are those of this process's
    # signature, and the signed message verifies.
    [mine], [theirs] = _tags(here), _tags(there)
    assert {k: theirs[k] for k in (b"bh", b"h", b"d", b"s")} == \
        {k: mine[k] for k in (b"bh", b"h", b"d", b"s")}
    assert there.endswith(message) and there != message
    assert dkimpy_verify(there, _published(keys.key_dir(config), DOMAIN)) == [True]
    assert not list(processes._scratch.iterdir())  # the scratch file is gone


def test_large_message_refusals_come_back_from_the_worker(config, processes, tmp_path) -> None:
    with pytest.raises(DkimRefused, match="2 From"):
        sign_outgoing(config, b"From: a@phutho.gov.vn\r\n" + _large(), SENDER, "outbound",
                      processes)
    # Not ours to sign: unchanged. Inbound mail does not go to the worker at all; a header
    # From outside the signing domains is found there, and nothing comes back.
    message = _large()
    assert sign_outgoing(config, message, SENDER, "inbound", processes) is message
    outside = message.replace(b"<chuyenvien@phutho.gov.vn>", b"<ceo@example.com>")
    assert sign_outgoing(config, outside, SENDER, "outbound", processes) is outside
    with pytest.raises(Parked) as err:
        run_stages(_large(), _facts(), default_stages(make_config(tmp_path / "x"), processes))
    assert err.value.stage == "transform" and "DkimError" in err.value.error


def test_the_worker_logs_in_the_gateways_format(config, tmp_path, capfd) -> None:
    # A spawned worker starts without logging: it gets the level and formatter of the process
    # that made the pool, so its notes about a large message read like the gateway's own.
    from mailgw.pipeline.offload import ContentProcesses
    from policies import load_policy
    from tests.policies.test_offload import SHIPPED

    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("GATEWAY-FORMAT %(name)s: %(message)s"))
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        workers = ContentProcesses(load_policy(SHIPPED), [DOMAIN], tmp_path / "scratch")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    try:
        outside = _large().replace(b"<chuyenvien@phutho.gov.vn>", b"<ceo@example.com>")
        assert sign_outgoing(config, outside, SENDER, "outbound", workers) is outside
    finally:
        workers.close()
    assert ("GATEWAY-FORMAT mailgw.dkim: not signing: header From example.com is outside"
            in capfd.readouterr().err)
