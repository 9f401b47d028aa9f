"""Envelope address checks: normalisation and the open-relay tricks table."""

from __future__ import annotations

import pytest

from mailgw.smtp.addresses import (
    Address,
    AddressError,
    is_internal,
    normalise_domain,
    parse_address,
    parse_mail_from,
    parse_rcpt_to,
)

ACCEPTED = [
    # given, utf8, expected str(Address), expected domain
    ("chutich@phutho.gov.vn", False, "chutich@phutho.gov.vn", "phutho.gov.vn"),
    ("ChuTich@PhuTho.GOV.VN", False, "ChuTich@phutho.gov.vn", "phutho.gov.vn"),
    ("<a@phutho.gov.vn>", False, "a@phutho.gov.vn", "phutho.gov.vn"),
    ("first.last+tag@so-tc.phutho.gov.vn", False, "first.last+tag@so-tc.phutho.gov.vn",
     "so-tc.phutho.gov.vn"),
    ("o'brien@example.com", False, "o'brien@example.com", "example.com"),
    ('"chutich"@phutho.gov.vn', False, "chutich@phutho.gov.vn", "phutho.gov.vn"),
    ('"john smith"@example.com', False, '"john smith"@example.com', "example.com"),
    ("a@xn--bcher-kva.example", False, "a@xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("a@Bücher.example", True, "a@xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("a@phúthọ.vn", True, "a@xn--phth-rra6296b.vn", "xn--phth-rra6296b.vn"),
    ("nguyễn@phutho.gov.vn", True, "nguyễn@phutho.gov.vn", "phutho.gov.vn"),
    ("a@localhost", False, "a@localhost", "localhost"),
    ("x" * 64 + "@example.com", False, "x" * 64 + "@example.com", "example.com"),
]


@pytest.mark.parametrize(("given", "utf8", "text", "domain"), ACCEPTED)
def test_accepted(given, utf8, text, domain):
    addr = parse_rcpt_to(given, utf8=utf8)
    assert str(addr) == text
    assert addr.domain == domain


REFUSED = [
    # given, utf8, code
    ("user%gmail.com@phutho.gov.vn", False, "percent_hack"),
    ("user%gmail.com", False, "no_domain"),
    ("gmail.com!user@phutho.gov.vn", False, "bang_path"),
    ("gmail.com!user", False, "no_domain"),
    ("@relay.example,@phutho.gov.vn:user@gmail.com", False, "source_route"),
    ("@phutho.gov.vn:user@gmail.com", False, "source_route"),
    ('"x@gmail.com"@phutho.gov.vn', False, "quoted_at"),
    ('"x\\@gmail.com"@phutho.gov.vn', False, "quoted_at"),
    ('"x%gmail.com"@phutho.gov.vn', False, "percent_hack"),
    ('"gmail.com!x"@phutho.gov.vn', False, "bang_path"),
    ("user@gmail.com@phutho.gov.vn", False, "multiple_at"),
    ("user@[1.2.3.4]", False, "address_literal"),
    ("user@[IPv6:2001:db8::1]", False, "address_literal"),
    ("user@1.2.3.4", False, "address_literal"),
    ("user@phutho.gov.vn.", False, "trailing_dot"),
    ("user@phutho.gov.vn．", True, "trailing_dot"),  # full-width dot, mapped by UTS #46
    ("user@phutho..gov.vn", False, "bad_domain"),
    ("user@.phutho.gov.vn", False, "bad_domain"),
    ("user@-phutho.gov.vn", False, "bad_domain"),
    ("user@phu_tho.gov.vn", False, "bad_domain"),
    ("user@xn--zz.example", False, "bad_domain"),
    ("user@", False, "empty_domain"),
    ("@", False, "source_route"),
    ("@phutho.gov.vn", False, "source_route"),
    ("user", False, "no_domain"),
    ("", False, "empty"),
    ("x" * 65 + "@example.com", False, "too_long"),
    ("a@" + "b" * 64 + ".com", False, "bad_domain"),
    ("a@" + ".".join(["b" * 60] * 5), False, "too_long"),
    ("user\x00@phutho.gov.vn", False, "control_char"),
    ("user\r\n@phutho.gov.vn", False, "control_char"),
    ("user@phutho.gov.vn\nRCPT TO:<x@gmail.com>", False, "control_char"),
    ("user\x7f@phutho.gov.vn", False, "control_char"),
    ("user@phutho.gov.vn\u202e", True, "control_char"),  # bidi override
    ("us\u200ber@phutho.gov.vn", True, "control_char"),  # zero-width space
    ("user name@phutho.gov.vn", False, "bad_local"),
    ("user\u00a0name@phutho.gov.vn", True, "bad_local"),
    (".user@phutho.gov.vn", False, "bad_local"),
    ("user.@phutho.gov.vn", False, "bad_local"),
    ("us..er@phutho.gov.vn", False, "bad_local"),
    ('"unterminated@phutho.gov.vn', False, "bad_local"),
    ('"a"b@phutho.gov.vn', False, "bad_local"),
    ('""@phutho.gov.vn', False, "bad_local"),
    ("nguyễn@phutho.gov.vn", False, "non_ascii"),
    ("a@phúthọ.vn", False, "non_ascii"),
    ("user@phutho .gov.vn", False, "bad_domain"),
]


@pytest.mark.parametrize(("given", "utf8", "code"), REFUSED)
def test_refused(given, utf8, code):
    with pytest.raises(AddressError) as info:
        parse_rcpt_to(given, utf8=utf8)
    assert info.value.code == code
    assert info.value.text.isascii()  # fit for an SMTP reply


def test_null_reverse_path():
    assert parse_mail_from("") is None
    assert parse_mail_from("<>") is None
    assert parse_mail_from("a@phutho.gov.vn") == Address("a", "phutho.gov.vn")
    with pytest.raises(AddressError):
        parse_rcpt_to("")


def test_key_is_case_insensitive():
    assert parse_address("ChuTich@PHUTHO.gov.vn").key == "chutich@phutho.gov.vn"


@pytest.mark.parametrize(("domain", "internal"), [
    ("phutho.gov.vn", True),
    ("so-tc.phutho.gov.vn", True),
    ("a.b.phutho.gov.vn", True),
    ("PHUTHO.gov.vn", True),
    ("evilphutho.gov.vn", False),  # whole labels only
    ("phutho.gov.vn.evil.com", False),
    ("gov.vn", False),
    ("gmail.com", False),
])
def test_is_internal(domain, internal):
    assert is_internal(domain, ["phutho.gov.vn"]) is internal


def test_decision_uses_normalised_domain():
    # An IDN spelling that maps onto an internal domain is treated as that domain.
    addr = parse_rcpt_to("a@ＰＨＵＴＨＯ.gov.vn", utf8=True)
    assert addr.domain == "phutho.gov.vn"
    assert is_internal(addr.domain, ["phutho.gov.vn"])
    assert normalise_domain("Phutho.Gov.VN") == "phutho.gov.vn"
