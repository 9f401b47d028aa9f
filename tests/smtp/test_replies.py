"""Each named reply has a valid code, an enhanced status code of the same class, and ASCII text."""

from __future__ import annotations

import re

import pytest

from mailgw.smtp import replies

REPLY = re.compile(r"^([245])\d\d ([245])\.\d{1,3}\.\d{1,3} [\x20-\x7e]+$")


@pytest.mark.parametrize("name", sorted(replies.ALL))
def test_reply_code_matches_enhanced_code_and_is_ascii(name: str) -> None:
    text = replies.ALL[name]
    m = REPLY.match(text)
    assert m, f"{name} is not '<code> <x.y.z> <ascii text>': {text!r}"
    assert m.group(1) == m.group(2), f"{name}: basic and enhanced code classes differ"


def test_our_own_trouble_is_never_permanent() -> None:
    for name in ("INTERNAL_ERROR", "STORE_UNAVAILABLE", "LOW_DISK", "RATE_LIMITED"):
        assert replies.ALL[name][0] == "4"


def test_format_reply_keeps_the_reply_on_one_ascii_line() -> None:
    out = replies.format_reply(replies.BAD_ADDRESS, why="bad\r\nRCPT TO:<x> đ")
    assert "\r" not in out and "\n" not in out and out.isascii()
