"""A listener's later connections get the command tables aiosmtpd itself builds for the first."""

from __future__ import annotations

import pytest

from mailgw.config import load
from mailgw.smtp import edge
from mailgw.smtp.mx import MXSMTP
from mailgw.smtp.submission import SubmissionContext, SubmissionSMTP


def _connections(cls: type) -> tuple[edge.GatewaySMTP, edge.GatewaySMTP]:
    ctx = SubmissionContext.build(load(None), None, None, None)  # type: ignore[arg-type]
    make = (lambda: MXSMTP(ctx)) if cls is MXSMTP else (lambda: SubmissionSMTP(ctx, False))
    edge._TABLES.pop(cls, None)
    first = make()  # aiosmtpd finds the commands itself
    assert cls in edge._TABLES
    return first, make()


def _unbound(smtp: edge.GatewaySMTP) -> dict[str, object]:
    """The tables as aiosmtpd looks entries up, each checked to be bound to `smtp` and then
    unbound."""
    def unbind(method):  # type: ignore[no-untyped-def]
        assert method.__self__ is smtp
        return method.__func__

    def gated(command):  # type: ignore[no-untyped-def]
        assert command.__qualname__.endswith("gated")
        return unbind(command.__wrapped__)

    auth, hooks, commands = smtp._auth_methods, smtp._handle_hooks, smtp._smtp_methods
    return {
        "auth": {k: (unbind(auth[k].method), auth[k].is_builtin) for k in auth},
        "hooks": {k: unbind(hooks.get(k)) for k in hooks},
        "commands": {k: gated(commands.get(k)) for k in commands},
        "ehlo": smtp._ehlo_hook_ver,
    }


@pytest.mark.parametrize("cls", [SubmissionSMTP, MXSMTP])
async def test_later_connections_get_the_same_tables(cls: type) -> None:
    first, later = _connections(cls)
    tables = _unbound(first)
    assert tables == _unbound(later)
    assert "DATA" in tables["commands"] and "DATA" in tables["hooks"]
    assert tables["ehlo"] == "new"
    expected_auth = {"PLAIN", "LOGIN"} if cls is SubmissionSMTP else set()
    assert expected_auth <= set(tables["auth"]) and "CRAM-MD5" not in tables["auth"]
    # The gate still wraps every command of the later connection.
    assert later._smtp_methods.get("NOOP").__qualname__.endswith("gated")
