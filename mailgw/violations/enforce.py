"""Enforcement: the policy, loaded once per process, and what a verdict writes to the store.

`Enforcement` is built by the pipeline at start (a bad policy file raises PolicyError there,
before anything listens). The `classify` and `decide` stages use it during DATA, in a worker
thread; `record()` runs inside the store writer's acceptance transaction, so the violation
record, the message (held for a quarantine), the policy header copy and the notices are one
commit, and the client's 250 or 550 comes only after it.

Flag and the `X-Mailgw-Policy` header: internal recipients get a copy with the header (the
reference and the reason), external recipients get the message as sent. When a flagged message
has both, the internal recipients' copy is stored as a second queued message
(`<queue id>-int`) in the same transaction: delivery needs no knowledge of policy, and nothing
about our decision ever leaves the province.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from mailgw.config import Config
from mailgw.directory import lookup_unit, unit_info
from mailgw.directory.cache import DirectoryCache
from mailgw.notices import NoticeRenderer
from mailgw.pipeline.mail import Mail
from mailgw.queue.enqueue import enqueue_rows
from mailgw.store.models import DirectoryUser, Message
from mailgw.violations import register
from policies import AddressClassifier, Policy, load_policy

log = logging.getLogger("mailgw.violations")

HEADER = "X-Mailgw-Policy"
# Vietnam has one offset all year (no daylight saving): notices show local time.
VN_OFFSET = timedelta(hours=7)
ACTION_TEXTS = {
    "reject": ("đã bị từ chối, không được gửi đi", "rejected and not sent"),
    "quarantine": ("đang bị giữ lại chờ quản trị viên xem xét, chưa được gửi đi",
                   "held for review and not sent"),
    "flag": ("đã được gửi đi và được ghi nhận để rà soát", "delivered and recorded for review"),
}


@dataclass
class Enforcement:
    """What the classify/decide stages and the commit hook share within one process."""

    config: Config
    policy: Policy
    addresses: AddressClassifier
    sessions: sessionmaker[Session]
    notices: NoticeRenderer
    directory: DirectoryCache

    @classmethod
    def build(cls, config: Config, sessions: sessionmaker[Session],
              policy: Policy | None = None) -> Enforcement:
        """Load the policy (PolicyError "file:line: …" if it is bad) and what goes with it."""
        policy = policy or load_policy(list(config.policy.files))
        domains = list(config.gateway.domains)
        n = config.notices
        renderer = NoticeRenderer(n.sender or f"mailgw-noreply@{domains[0]}", n.templates,
                                  config.hostname)
        self = cls(config, policy, policy.address_classifier(domains), sessions, renderer,
                   DirectoryCache(sessions, domains, config.directory.refresh))
        self.warm_up()
        return self

    def warm_up(self) -> None:
        """Classify one small message now: the first call imports the extractors (about half
        a second), which must not count against the first real message's timeout."""
        sample = (b"From: <a@" + self.domains[0].encode() + b">\r\nSubject: x\r\n\r\nx\r\n")
        self.policy.classify(sample, f"a@{self.domains[0]}", ["b@example.org"],
                             addresses=self.addresses)

    @property
    def domains(self) -> list[str]:
        return list(self.config.gateway.domains)

    def is_internal(self, address: str) -> bool:
        return bool(address) and "internal" in self.addresses.classify(address).classes

    def sender_unit(self, mail: Mail) -> tuple[str, str]:
        """The sender's unit from the directory (envelope sender, else the login), else the
        subdomain, else "unknown"; and where it came from."""
        unit, source = self.directory.unit_of(mail.mail_from)
        if source != "directory" and mail.session.auth_user:
            by_login = self.directory.unit_of(mail.session.auth_user)
            if by_login[1] == "directory":
                return by_login
        return unit, source

    def rule_texts(self, rule_id: str) -> tuple[str, str]:
        for r in self.policy.rules:
            if r.id == rule_id:
                return r.description.vi, r.description.en
        return rule_id, rule_id

    # -- inside the acceptance transaction (store writer thread) -----------------------------

    def record(self, session: Session, mail: Mail, row: Message | None) -> None:
        """Write what the verdict asks for; `row` is the stored message (None for reject)."""
        if mail.verdict == "allow":
            return
        d = mail.verdict_detail
        v = register.append(
            session, kind="violation", direction=mail.direction, sender=mail.mail_from,
            auth_user=mail.session.auth_user or mail.session.trusted_host,
            # A unit derived from a deep subdomain may be longer than the column.
            unit=str(d.get("unit", "unknown"))[:64], recipients=list(mail.rcpt_tos),
            action=mail.verdict,
            reasons=list(d.get("reasons", [])), rules=list(d.get("rules", [])),
            evidence=list(d.get("evidence", [])), policy_version=d.get("policy_version", ""),
            queue_id=mail.queue_id, message_id=mail.message_id[:998])
        d["reference"] = v.reference
        if row is not None:
            # The row was flushed (by the append) with this very dict, since changed in place:
            # tell SQLAlchemy, which would otherwise see no change.
            row.verdict_detail = dict(d)
            flag_modified(row, "verdict_detail")
            if mail.verdict == "quarantine":
                # Held: neither queued nor deferred, so no worker claims it and `queue retry`
                # does not touch it; only `mailgw quarantine release` (recorded) lets it go.
                row.status = "quarantined"
                for entry in row.entries:
                    entry.status = "quarantined"
            elif mail.verdict == "flag":
                self._internal_copy(session, mail, row, v.reference)
        self._notices(session, mail, v.reference)
        log.warning("%s: %s %s by <%s> unit=%s reasons=%s", v.reference, mail.verdict,
                    mail.queue_id, mail.mail_from, d.get("unit"), ",".join(d.get("reasons", [])))

    def _internal_copy(self, session: Session, mail: Mail, row: Message, ref: str) -> None:
        internal = [r for r in mail.rcpt_tos if self.is_internal(r)]
        if not internal:
            return
        d = mail.verdict_detail
        value = (f"{mail.verdict}; reason={','.join(d.get('reasons', [])) or '-'}; "
                 f"rule={(d.get('rules') or ['-'])[0]}; ref={ref}")
        header = f"{HEADER}: {value}\r\n".encode("ascii", "replace")
        # The copy for internal recipients is the row's bytes (the mail's, even if they were
        # spooled: taken from memory, not read back from the file inside this transaction)
        # with the header in front; its reference only exists in this transaction.
        content = b"".join([header, *mail.stored_parts()])
        if len(internal) == len(mail.rcpt_tos):
            row.content, row.spool = content, None
            row.size = len(row.content)
            return
        keep = set(internal)
        row.entries = [e for e in row.entries if e.recipient not in keep]
        row.recipients = [r for r in mail.rcpt_tos if r not in keep]
        enqueue_rows(session, mail.mail_from, internal, content, mail.direction,
                     queue_id=f"{mail.queue_id}-int", message_id=row.message_id,
                     auth_user=row.auth_user, client_ip=row.client_ip,
                     client_helo=row.client_helo, received_at=row.received_at,
                     verdict=row.verdict, verdict_detail=dict(d, copy_of=mail.queue_id))

    def _notices(self, session: Session, mail: Mail, ref: str) -> None:
        d = mail.verdict_detail
        notify = set(d.get("notify", []))
        unit = unit_info(session, d.get("unit", "unknown"))
        internal_sender = self.is_internal(mail.mail_from)
        # The units concerned: the sender's; for mail from outside (an official document from
        # webmail), the units of the internal recipients, which the rule is about.
        units = [unit] if internal_sender else [
            unit_info(session, lookup_unit(session, r, self.domains)[0])
            for r in dict.fromkeys(r.lower() for r in mail.rcpt_tos) if self.is_internal(r)]
        targets: dict[str, str] = {}
        # The sender hears about a flag or quarantine always, about a reject when the rule says
        # so; only internal senders: our rules and evidence are not told to the outside.
        if (mail.verdict in ("flag", "quarantine") or "sender" in notify) and internal_sender:
            targets[mail.mail_from.lower()] = "sender"
        if "unit_head" in notify:
            for u in units:
                if u.head_address:
                    targets.setdefault(u.head_address, "unit_head")
        if "admins" in notify:
            for a in [*(a for u in units for a in u.admins), *self.config.notices.admins]:
                targets.setdefault(a.lower(), "admins")
        if not targets:
            return
        person = session.get(DirectoryUser, mail.mail_from.lower())
        rule_vi, rule_en = self.rule_texts((d.get("rules") or [""])[0])
        action_vi, action_en = ACTION_TEXTS.get(mail.verdict, (mail.verdict, mail.verdict))
        context: dict[str, Any] = {
            "reference": ref, "action": mail.verdict, "action_vi": action_vi,
            "action_en": action_en, "sender": mail.mail_from,
            "sender_name": person.display_name if person else "",
            "position": person.position if person else "",
            "unit": unit.id, "recipients": list(mail.rcpt_tos),
            "unit_name": unit.name if internal_sender else
            ", ".join(u.name or u.id for u in units) + " (đơn vị nhận / receiving unit)",
            "subject": d.get("subject", ""), "queue_id": mail.queue_id,
            "time_local": (mail.received_at + VN_OFFSET).strftime("%H:%M ngày %d/%m/%Y"),
            "rule_description_vi": rule_vi, "rule_description_en": rule_en,
            "notice_vi": d.get("notice_vi", ""), "notice_en": d.get("notice_en", ""),
            "evidence": list(d.get("evidence", [])), "reasons": list(d.get("reasons", [])),
        }
        for to, audience in targets.items():
            notice = self.notices.render(audience, to, context)
            # Null envelope sender: a notice that cannot be delivered bounces to nobody.
            enqueue_rows(session, "", [to], notice.content, "local",
                         verdict="allow", verdict_detail={"notice": audience, "reference": ref})


def subject_of(raw: bytes) -> str:
    """The decoded Subject of a message (for notices), "" if none."""
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[: end + 2]
    try:
        msg = BytesHeaderParser(policy=default_policy).parsebytes(head)
        return " ".join(str(msg.get("Subject", "")).split())[:300]
    except Exception:  # a broken Subject must not stop a violation from being recorded
        return ""
