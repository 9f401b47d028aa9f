"""DKIM errors: the exceptions the signing stage and the `mailgw dkim` commands raise.

`DkimError` is an operator-facing problem (a key missing or unreadable, a manifest that cannot be
read); `DkimRefused` is a message we must not sign (two From or two Subject headers). Both make
the post-acceptance stage raise, so the message is parked, never sent unsigned by accident.
"""

from __future__ import annotations

from mailgw.config import ConfigError


class DkimError(ConfigError):
    """A key or manifest problem, phrased for the operator (names the domain and the file).

    A ConfigError, so a start-up check that raises it ends `mailgw serve` with one line.
    """


class DkimRefused(Exception):
    """The message cannot be signed safely (e.g. two From headers): it must not leave."""
