"""Auto-forward indicators, from the top-level header only (never an attached message's).

- `Auto-Submitted:` whose value (case-insensitive, before any `;` parameter) is
  `auto-forwarded` or `auto-generated` (`no` and `auto-replied` do not count);
- a `Resent-From:` or `Resent-To:` field;
- an `X-Forwarded-To:` or `X-Forwarded-For:` field.
A manual forward ("Fwd:" subject, quoted text, a message/rfc822 attachment) is no indicator.
"""

from __future__ import annotations

from collections.abc import Iterable

from policies.evidence import Evidence

_AUTO_SUBMITTED = {"auto-forwarded", "auto-generated"}
_PRESENCE = {"resent-from", "resent-to", "x-forwarded-to", "x-forwarded-for"}


def find_auto_forward(headers: Iterable[tuple[str, str]]) -> list[Evidence]:
    """Evidence for each auto-forward indicator among the top-level header fields."""
    found = []
    for name, value in headers:
        key = name.strip().lower()
        if key == "auto-submitted":
            token = value.split(";", 1)[0].strip().lower()
            # A folded or commented value: the first word is the keyword.
            token = token.split("(", 1)[0].strip()
            if token in _AUTO_SUBMITTED:
                found.append(Evidence.of("header", "auto_submitted", f"{name}: {value}"))
        elif key in _PRESENCE:
            found.append(Evidence.of("header", key.replace("-", "_"), f"{name}: {value}"))
    return found
