"""Facts: one flat, typed record about a message, built once, handed to every rule.

`build_facts()` turns an `Extraction` (what content extraction read from the bytes) plus the SMTP
envelope, the direction and the sender's unit into `Facts`; `classify()` does the same from the
raw bytes. The envelope decides who sends and who receives (Bcc recipients exist only there);
From/To/Cc header fields are never used. Every true content fact carries its evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from policies.classifiers.addresses import INTERNAL, Address, AddressClassifier
from policies.classifiers.attachments import DOCUMENT_EXTENSIONS, find_document_attachments
from policies.classifiers.defects import find_defects
from policies.classifiers.forwarding import find_auto_forward
from policies.classifiers.official import MIN_SIGNALS, document_signals
from policies.classifiers.secret import find_markings
from policies.evidence import Evidence
from policies.extraction import Extraction
from policies.text import normalize

OUTBOUND = "outbound"
INBOUND = "inbound"
DIRECTIONS = (OUTBOUND, INBOUND)

# The boolean content facts a rule may test (`[rule.when] <name> = true|false`).
CONTENT_FACTS = (
    "official_document",
    "secret_marking",
    "auto_forward",
    "document_attachment",
    "encrypted",
    "unreadable",
    "ambiguous",
    "unreadable_content",   # any of encrypted, unreadable, ambiguous
    "lookalike_domain",     # the sender or a recipient imitates an internal or webmail domain
)


@dataclass(frozen=True)
class ClassifyOptions:
    """Policy settings the classifiers need (from the policy file's [policy] table)."""

    min_signals: int = MIN_SIGNALS
    document_extensions: tuple[str, ...] = DOCUMENT_EXTENSIONS


@dataclass(frozen=True)
class Facts:
    direction: str
    sender: Address
    recipients: tuple[Address, ...]
    sender_unit: str = ""
    size: int = 0
    official_document: bool = False
    secret_marking: bool = False
    auto_forward: bool = False
    document_attachment: bool = False
    encrypted: bool = False
    unreadable: bool = False
    ambiguous: bool = False
    lookalike_domain: bool = False
    documents_examined: int = 0
    # fact name -> the evidence that made it true
    evidence: Mapping[str, tuple[Evidence, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def unreadable_content(self) -> bool:
        return self.encrypted or self.unreadable or self.ambiguous

    def fact(self, name: str) -> bool:
        """The value of a content fact by name (one of CONTENT_FACTS)."""
        return bool(getattr(self, name))

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # Picklable (the gateway classifies big messages in a worker process): the read-only
        # evidence mapping travels as a dict.
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["evidence"] = dict(self.evidence)
        return _facts_from_state, (state,)

    def evidence_for(self, name: str) -> tuple[Evidence, ...]:
        if name == "unreadable_content":
            return tuple(e for k in ("encrypted", "unreadable", "ambiguous")
                         for e in self.evidence.get(k, ()))
        return self.evidence.get(name, ())


def _facts_from_state(state: dict[str, Any]) -> Facts:
    return Facts(**{**state, "evidence": MappingProxyType(state["evidence"])})


def build_facts(
    extraction: Extraction,
    mail_from: str,
    rcpt_tos: Sequence[str],
    *,
    addresses: AddressClassifier,
    direction: str | None = None,
    sender_unit: str | None = None,
    size: int = 0,
    options: ClassifyOptions | None = None,
    needed: Callable[[Facts], Collection[str]] | None = None,
) -> Facts:
    """Facts from what extraction read, the envelope, the direction and the sender's unit.

    `direction` is what the gateway knows (submission: outbound, MX: inbound); without it, mail
    from an internal sender is outbound and everything else inbound.
    `needed`, given the envelope facts, names the content facts some rule could still use; the
    line classifiers (official document, secret marking: most of the work) then run only for
    those. The others are cheap and always computed. Without it every fact is computed.
    """
    opts = options or ClassifyOptions()
    sender = addresses.classify(mail_from)
    recipients = tuple(addresses.classify(r) for r in rcpt_tos)
    if direction is None:
        direction = OUTBOUND if sender.is_a(INTERNAL) else INBOUND
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")

    unit = (sender_unit or "").strip().lower()
    wanted = None if needed is None else set(needed(Facts(
        direction=direction, sender=sender, recipients=recipients, sender_unit=unit,
        size=size)))
    want_official = wanted is None or "official_document" in wanted
    want_secret = wanted is None or "secret_marking" in wanted
    evidence: dict[str, list[Evidence]] = {}

    def add(name: str, items: Iterable[Evidence]) -> None:
        items = list(items)
        if items:
            evidence.setdefault(name, []).extend(items)

    for doc in extraction.documents if want_official or want_secret else ():
        # Normalised once, read by both line classifiers.
        normalized = [normalize(line) for line in doc.lines]
        if want_official:
            signals = document_signals(doc.part, doc.lines, normalized)
            if signals.is_official(opts.min_signals):
                add("official_document", signals.evidence())
        if want_secret:
            add("secret_marking", find_markings(doc.part, doc.lines, normalized))
    add("auto_forward", find_auto_forward(extraction.headers))
    add("document_attachment",
        find_document_attachments(extraction.attachments, opts.document_extensions))
    defects = find_defects(extraction)
    add("encrypted", defects.encrypted)
    add("unreadable", defects.unreadable)
    add("ambiguous", defects.ambiguous)
    add("lookalike_domain", (
        Evidence.of("envelope", "lookalike_domain", f"{a.raw.strip()} ~ {a.lookalike_of}")
        for a in (sender, *recipients) if a.lookalike_of
    ))

    return Facts(
        direction=direction,
        sender=sender,
        recipients=recipients,
        sender_unit=unit,
        size=size,
        documents_examined=len(extraction.documents),
        evidence=MappingProxyType({k: tuple(v) for k, v in evidence.items()}),
        **{name: name in evidence for name in CONTENT_FACTS if name != "unreadable_content"},
    )


def classify(
    raw: bytes,
    mail_from: str,
    rcpt_tos: Sequence[str],
    *,
    domains: Iterable[str] = (),
    addresses: AddressClassifier | None = None,
    direction: str | None = None,
    sender_unit: str | None = None,
    options: ClassifyOptions | None = None,
    needed: Callable[[Facts], Collection[str]] | None = None,
) -> Facts:
    """Facts from the raw message bytes and the envelope (runs content extraction once).

    Give `domains` (the gateway's internal domains) or a ready `addresses` classifier (which
    also carries the policy's webmail list; `Policy.classify` passes its own).
    """
    from policies.extract import extract

    classifier = addresses if addresses is not None else AddressClassifier(domains)
    return build_facts(
        extract(raw),
        mail_from,
        rcpt_tos,
        addresses=classifier,
        direction=direction,
        sender_unit=sender_unit,
        size=len(raw),
        options=options,
        needed=needed,
    )
