"""The rules model: conditions, rules, per-unit overrides and exemptions, as loaded data.

A rule is a name, texts for people, a condition over `Facts` and an action from a closed set.
Conditions are pure checks of facts; they never read anything else. The loader
(`policies.loader`) builds these objects from the TOML file and refuses anything it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from policies.classifiers.addresses import Address, is_under
from policies.evidence import Evidence
from policies.facts import Facts

ALLOW, FLAG, QUARANTINE, REJECT = "allow", "flag", "quarantine", "reject"
ACTIONS = (ALLOW, FLAG, QUARANTINE, REJECT)
# Actions that stop delivery; monitor mode turns them into FLAG.
BLOCKING = (QUARANTINE, REJECT)
NOTIFY_TARGETS = ("sender", "unit_head", "admins")


def address_matches(addr: Address, patterns: frozenset[str]) -> bool:
    """`patterns` holds addresses (`a@b`, sub-address tags ignored) and domains (subdomains too)."""
    for p in patterns:
        if "@" in p:
            if addr.address == p:
                return True
        elif addr.domain and is_under(addr.domain, p):
            return True
    return False


@dataclass(frozen=True)
class Condition:
    """Every given test must hold; a test left out (None / empty) does not matter."""

    direction: frozenset[str] = frozenset()
    sender_class: frozenset[str] = frozenset()       # the sender is in one of these classes
    sender_address: frozenset[str] = frozenset()     # addresses or domains
    sender_unit: frozenset[str] = frozenset()
    recipients_any: frozenset[str] = frozenset()     # at least one recipient in one of these
    recipients_all: frozenset[str] = frozenset()     # every recipient in one of these
    recipient_address: frozenset[str] = frozenset()  # at least one recipient is one of these
    facts: tuple[tuple[str, bool], ...] = ()         # content facts and the value required
    size_over: int | None = None                     # bytes
    size_under: int | None = None

    def matches(self, f: Facts, recipients: tuple[Address, ...]) -> bool:
        if not self.envelope_matches(f, recipients):
            return False
        if any(f.fact(name) != want for name, want in self.facts):
            return False
        if self.size_over is not None and f.size <= self.size_over:
            return False
        return not (self.size_under is not None and f.size >= self.size_under)

    def envelope_matches(self, f: Facts, recipients: tuple[Address, ...]) -> bool:
        """The tests that need no content fact: direction, sender, unit and recipients."""
        if self.direction and f.direction not in self.direction:
            return False
        if self.sender_class and not (f.sender.classes & self.sender_class):
            return False
        if self.sender_address and not address_matches(f.sender, self.sender_address):
            return False
        if self.sender_unit and f.sender_unit not in self.sender_unit:
            return False
        if self.recipients_any and not any(r.classes & self.recipients_any for r in recipients):
            return False
        if self.recipients_all and not (
            recipients and all(r.classes & self.recipients_all for r in recipients)
        ):
            return False
        return not (self.recipient_address and not any(
            address_matches(r, self.recipient_address) for r in recipients
        ))

    def evidence(self, f: Facts, recipients: tuple[Address, ...]) -> list[Evidence]:
        """What this condition used, for the verdict: content evidence first, then the envelope."""
        out: list[Evidence] = []
        for name, want in self.facts:
            if want:
                out.extend(f.evidence_for(name))
        if self.sender_class or self.sender_address or self.sender_unit:
            # Name the class the rule asked for (`sender_internal`), else all of them.
            label = "/".join(sorted(f.sender.classes & self.sender_class)
                             or sorted(f.sender.classes))
            out.append(Evidence.of("envelope", f"sender_{label}", f.sender.raw.strip() or "<>"))
        for r in recipients:
            if (self.recipients_any and r.classes & self.recipients_any) or (
                self.recipient_address and address_matches(r, self.recipient_address)
            ):
                label = "/".join(sorted(r.classes & self.recipients_any) or sorted(r.classes))
                out.append(Evidence.of("envelope", f"recipient_{label}", r.raw.strip()))
        return out


@dataclass(frozen=True)
class Texts:
    vi: str = ""
    en: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    action: str
    reason: str = ""
    description: Texts = Texts()
    smtp: Texts = Texts()       # ASCII: Vietnamese without diacritics, English
    notice: Texts = Texts()     # for people: Vietnamese with diacritics, English
    notify: tuple[str, ...] = ()
    when: Condition = Condition()
    enabled: bool = True
    source: str = ""            # file:line, for `policy show` and error messages


@dataclass(frozen=True)
class UnitOverride:
    """A unit's changes to the rules: monitor mode, other actions, rules switched off."""

    unit: str
    monitor: bool = False
    actions: tuple[tuple[str, str], ...] = ()
    disabled: frozenset[str] = frozenset()
    source: str = ""

    def action_for(self, rule_id: str) -> str | None:
        return dict(self.actions).get(rule_id)


@dataclass(frozen=True)
class Exemption:
    """Rules that do not apply to a system sender, or to allow-listed recipients.

    With `senders` only: the listed rules are skipped for mail from those senders.
    With `recipients`: those recipients are left out when the listed rules look at recipients
    (the others still count), for any sender or, with `senders` too, for those senders only.
    """

    id: str
    justification: str
    rules: frozenset[str]
    senders: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    expires: date | None = None
    source: str = ""

    def active(self, today: date | None) -> bool:
        # Without a date the expiry cannot be checked: an expiring exemption then does not
        # apply (fail closed); a permanent one always does.
        if self.expires is None:
            return True
        return today is not None and today <= self.expires

