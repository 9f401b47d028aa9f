"""The plain-path shortcut of the SMTP edge gives what aiosmtpd's own parser gives."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP

from mailgw.smtp.edge import GatewaySMTP


def _edge(limit: int = 0) -> GatewaySMTP:
    edge = object.__new__(GatewaySMTP)  # only the parser is used: no connection state
    edge.local_part_limit = limit
    return edge


PATHS = [
    "<a@b.c>", "<a@b.c> SIZE=10", "<a@b.c>  BODY=8BITMIME SIZE=1", "<a.b+c@x-y.z> ",
    "<chuyen.vien@phutho.gov.vn>\tSMTPUTF8", "<a@b.c>(comment)", "<a@b.c>SIZE=1",
    "<@route:a@b.c>", "<\"quoted local\"@b.c>", "<a..b@c.d>", "<.a@b.c>", "<a@[127.0.0.1]>",
    "<a@b..c>", "<>", "a@b.c", "<a@b.c", "<tiếng@việt.vn>", "<a=b@c.d> X=Y",
    " <a@b.c>", "<a@b.c> (x) SIZE=1", "",
]


@pytest.mark.parametrize("path", PATHS)
def test_same_as_aiosmtpd(path: str) -> None:
    edge = _edge()
    assert edge._getaddr(path) == SMTP._getaddr(edge, path)


@pytest.mark.parametrize("path", ["<" + "a" * 65 + "@b.c>", "<" + "a" * 64 + "@b.c> SIZE=1"])
def test_local_part_limit_as_aiosmtpd(path: str) -> None:
    edge = _edge(limit=64)
    assert edge._getaddr(path) == SMTP._getaddr(edge, path)
