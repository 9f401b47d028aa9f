"""The engine: a loaded Policy evaluates Facts into a Verdict; first matching rule wins.

One short loop over the rules in file order. Exemptions are applied per rule before it is
tested, per-unit overrides and monitor mode after the deciding rule is known. Every rule that
matches is listed (the trail); the first one decides the action and the reason and gives the
evidence. No clock: the date for exemption expiry is passed in by the caller.
A Policy is immutable once loaded, so gateway worker threads may share one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from policies.classifiers.addresses import Address, AddressClassifier
from policies.classifiers.webmail import WebmailList
from policies.evidence import Evidence
from policies.extraction import Extraction
from policies.facts import ClassifyOptions, Facts, build_facts, classify
from policies.rules import ALLOW, BLOCKING, FLAG, Exemption, Rule, UnitOverride, address_matches


@lru_cache(maxsize=16)
def _address_classifier(domains: tuple[str, ...], add: tuple[str, ...],
                        remove: tuple[str, ...]) -> AddressClassifier:
    return AddressClassifier(domains, WebmailList(add, remove))


@dataclass(frozen=True)
class Verdict:
    action: str
    reasons: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    policy_version: str = ""
    notify: tuple[str, ...] = ()
    smtp_text: str = ""           # ASCII "<vi> / <en>" for a 5xx reply, "" for allow
    notice_vi: str = ""
    notice_en: str = ""
    monitored: bool = False       # True when monitor mode turned a block into a flag
    intended_action: str = ""     # the action before monitor mode / unit override
    exemptions: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return self.action in BLOCKING

    def as_json(self) -> dict[str, Any]:
        """The `mailgw policy test --json` contract (DESIGN.md section 3), nothing more."""
        return {
            "action": self.action,
            "reasons": list(self.reasons),
            "rules": list(self.rules),
            "evidence": [e.as_dict() for e in self.evidence],
            "policy_version": self.policy_version,
        }


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    version: str
    files: tuple[str, ...] = ()
    name: str = ""
    monitor: bool = False
    units: tuple[UnitOverride, ...] = ()
    exemptions: tuple[Exemption, ...] = ()
    webmail_add: tuple[str, ...] = ()
    webmail_remove: tuple[str, ...] = ()
    options: ClassifyOptions = field(default_factory=ClassifyOptions)

    # -- classification with this policy's webmail list and settings --------------------------

    def address_classifier(self, domains: Iterable[str]) -> AddressClassifier:
        """The address classifier for these internal domains and this policy's webmail list
        (built once per domain set and webmail changes, then shared: it is read-only)."""
        return _address_classifier(tuple(domains), self.webmail_add, self.webmail_remove)

    def classify(
        self,
        raw: bytes,
        mail_from: str,
        rcpt_tos: Sequence[str],
        *,
        domains: Iterable[str] = (),
        addresses: AddressClassifier | None = None,
        direction: str | None = None,
        sender_unit: str | None = None,
        only_needed: bool = False,
    ) -> Facts:
        """Facts for a message under this policy (give `domains`, or a classifier to reuse).

        `only_needed` (the gateway): content facts no rule could use for this envelope are left
        false, unexamined (`needed_facts`); the verdict is the same, the work is less. `policy
        test` and reports leave it off and see every fact."""
        return classify(raw, mail_from, rcpt_tos,
                        addresses=addresses or self.address_classifier(domains),
                        direction=direction, sender_unit=sender_unit, options=self.options,
                        needed=self.needed_facts if only_needed else None)

    def needed_facts(self, envelope: Facts) -> frozenset[str]:
        """The content facts tested by a rule that could match this envelope.

        Exemptions and unit overrides only take recipients or rules away, so a rule whose
        envelope tests fail with every recipient cannot match whatever the content is."""
        unit = self.unit(envelope.sender_unit) if envelope.sender_unit else None
        out: set[str] = set()
        for rule in self.rules:
            if not rule.enabled or (unit and rule.id in unit.disabled):
                continue
            if rule.when.envelope_matches(envelope, envelope.recipients):
                out.update(name for name, _ in rule.when.facts)
        return frozenset(out)

    def facts_from_extraction(
        self, extraction: Extraction, mail_from: str, rcpt_tos: Sequence[str], *,
        addresses: AddressClassifier, direction: str | None = None,
        sender_unit: str | None = None, size: int = 0,
    ) -> Facts:
        return build_facts(extraction, mail_from, rcpt_tos, addresses=addresses,
                           direction=direction, sender_unit=sender_unit, size=size,
                           options=self.options)

    # -- evaluation -----------------------------------------------------------------------------

    def unit(self, name: str) -> UnitOverride | None:
        for u in self.units:
            if u.unit == name:
                return u
        return None

    def _recipients_for(
        self, rule: Rule, facts: Facts, today: date | None, used: list[str]
    ) -> tuple[Address, ...] | None:
        """The recipients `rule` looks at after exemptions; None when the rule is exempted."""
        recipients = facts.recipients
        for ex in self.exemptions:
            if rule.id not in ex.rules or not ex.active(today):
                continue
            sender_ok = not ex.senders or address_matches(facts.sender, ex.senders)
            if not sender_ok:
                continue
            if not ex.recipients:
                used.append(ex.id)
                return None
            kept = tuple(r for r in recipients if not address_matches(r, ex.recipients))
            if len(kept) != len(recipients):
                used.append(ex.id)
                recipients = kept
        return recipients

    def evaluate(self, facts: Facts, today: date | None = None) -> Verdict:
        """The verdict for `facts`: the first matching rule decides; no match is allow."""
        unit = self.unit(facts.sender_unit) if facts.sender_unit else None
        hits: list[tuple[Rule, tuple[Address, ...]]] = []
        exemptions: list[str] = []
        for rule in self.rules:
            if not rule.enabled or (unit and rule.id in unit.disabled):
                continue
            used: list[str] = []
            recipients = self._recipients_for(rule, facts, today, used)
            if recipients is None or not rule.when.matches(facts, recipients):
                # Record an exemption only where it changed the outcome (the rule would have
                # matched without it) and only before the deciding rule.
                if used and not hits and rule.when.matches(facts, facts.recipients):
                    exemptions.extend(used)
                continue
            hits.append((rule, recipients))
        if not hits:
            return Verdict(action=ALLOW, policy_version=self.version,
                           exemptions=tuple(dict.fromkeys(exemptions)))

        rule, recipients = hits[0]
        intended = (unit.action_for(rule.id) if unit else None) or rule.action
        action = intended
        monitored = False
        if action in BLOCKING and (self.monitor or (unit is not None and unit.monitor)):
            action, monitored = FLAG, True
        smtp = f"{rule.smtp.vi} / {rule.smtp.en}" if rule.smtp.vi and rule.smtp.en else (
            rule.smtp.vi or rule.smtp.en)
        return Verdict(
            action=action,
            reasons=(rule.reason,) if rule.reason else (),
            rules=tuple(r.id for r, _ in hits),
            evidence=tuple(dict.fromkeys(rule.when.evidence(facts, recipients))),
            policy_version=self.version,
            notify=rule.notify,
            smtp_text=smtp if action != ALLOW else "",
            notice_vi=rule.notice.vi,
            notice_en=rule.notice.en,
            monitored=monitored,
            intended_action=intended if intended != action else "",
            exemptions=tuple(dict.fromkeys(exemptions)),
        )
