"""SQLAlchemy models: users, messages, per-recipient queue entries.

Times are stored as naive UTC (`UTCDateTime`) so that SQLite and PostgreSQL compare them the same
way; Python code always sees timezone-aware UTC values. Message bytes live in the database so that
several gateway nodes sharing one PostgreSQL can deliver each other's mail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON,
    }


class User(Base):
    """A local account for SMTP AUTH (the `local` authenticator)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    """One accepted (or rejected) message: envelope, identity, verdict and its bytes."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    queue_id: Mapped[str] = mapped_column(String(32), unique=True)
    message_id: Mapped[str] = mapped_column(String(998), default="")
    direction: Mapped[str] = mapped_column(String(16))  # outbound | inbound | local
    mail_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[Any]] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(BigInteger)
    auth_user: Mapped[str | None] = mapped_column(String(320), nullable=True)
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    client_helo: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    verdict: Mapped[str] = mapped_column(String(16), default="allow")
    verdict_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # accepted | parked (a post-acceptance stage failed) | done (every recipient final)
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    # Post-acceptance stages (archive, transform) ran and `content` holds the bytes to send.
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    parked_stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parked_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    # A large message on a SQLite store: the name of the file in the spool that holds its
    # bytes (`content` is then empty). Read either with mailgw.store.spool.content_of.
    spool: Mapped[str | None] = mapped_column(String(80), nullable=True)

    entries: Mapped[list[QueueEntry]] = relationship(back_populates="message",
                                                     cascade="all, delete-orphan")


class QueueEntry(Base):
    """Delivery state of one recipient of one message."""

    __tablename__ = "queue_entries"
    __table_args__ = (Index("ix_queue_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"),
                                            index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    domain: Mapped[str] = mapped_column(String(255))
    # queued | deferred | delivered | bounced | expired | deleted | held
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    next_hop: Mapped[str] = mapped_column(String(300), default="")
    # A worker's lease: while locked_until is in the future, only locked_by may deliver the entry.
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    final_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A bounce (DSN) for this entry has been queued.
    bounce_sent: Mapped[bool] = mapped_column(Boolean, default=False)

    message: Mapped[Message] = relationship(back_populates="entries")


FINAL_STATUSES = ("delivered", "bounced", "expired", "deleted")


# -- Policy enforcement (issue 4): the violation register and the organisation directory --------


class Violation(Base):
    """One record of the append-only, hash-chained violation register (mailgw.violations).

    `seq` is the chain position (1, 2, …, no gaps); `hash` is sha256 over the canonical JSON of
    every other column, `prev_hash` included, so an edit, a deletion or a reordering breaks the
    chain at that record. Never updated or deleted: a correction or a quarantine decision is a
    new record (`kind`) whose `refers_to` names the reference of the record it is about.
    """

    __tablename__ = "violations"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=False)
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    # violation | quarantine_release | quarantine_delete | correction
    kind: Mapped[str] = mapped_column(String(24), default="violation")
    refers_to: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    direction: Mapped[str] = mapped_column(String(16), default="")
    sender: Mapped[str] = mapped_column(String(320), default="", index=True)
    auth_user: Mapped[str | None] = mapped_column(String(320), nullable=True)
    unit: Mapped[str] = mapped_column(String(64), default="", index=True)
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(16), default="")
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rules: Mapped[list[Any]] = mapped_column(JSON, default=list)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    policy_version: Mapped[str] = mapped_column(String(80), default="")
    queue_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    message_id: Mapped[str] = mapped_column(String(998), default="")
    # Who made a decision record (quarantine release/delete, correction) and why.
    actor: Mapped[str] = mapped_column(String(320), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class DirectoryUnit(Base):
    """A unit of the organisation (sở, huyện, văn phòng…), from `mailgw directory import`."""

    __tablename__ = "directory_units"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    head_name: Mapped[str] = mapped_column(String(200), default="")
    head_address: Mapped[str] = mapped_column(String(320), default="")
    admins: Mapped[list[Any]] = mapped_column(JSON, default=list)


class DirectoryUser(Base):
    """A person: address -> unit, display name, position."""

    __tablename__ = "directory_users"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[str] = mapped_column(String(200), default="")


# The tables behind the two hot entities, for Core statements (the queue's insert and result
# paths run them for every message, without the ORM's unit of work).
MESSAGES = cast(Table, Message.__table__)
QUEUE_ENTRIES = cast(Table, QueueEntry.__table__)
