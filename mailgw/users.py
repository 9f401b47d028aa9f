"""Local user accounts (the `local` authenticator's table): add, password, list, enable, aliases.

Synchronous store functions for `mailgw users` and for tests; each takes a SQLAlchemy `Session`
and flushes, the caller owns the transaction (`with Session(engine) as s, s.begin(): ...`).
Addresses are stored in canonical form (see `mailgw.auth.normalise_login`), so lookups at login
are exact matches. Problems the operator can fix raise `UserStoreError` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailgw.auth.base import normalise_login
from mailgw.auth.passwords import MAX_PASSWORD, hash_password
from mailgw.smtp.addresses import AddressError, is_internal, parse_address
from mailgw.store.models import User

MIN_PASSWORD = 8


class UserStoreError(ValueError):
    """A user operation that cannot be done as asked (phrased for the operator)."""


def canonical_address(text: str, domains: Sequence[str] | None = None) -> str:
    """`text` as a canonical address; if `domains` is given it must be internal."""
    try:
        addr = parse_address(text.strip(), utf8=True)
    except AddressError as exc:
        raise UserStoreError(f"{text!r} is not a usable address: {exc.text}") from None
    if domains is not None and not is_internal(addr.domain, list(domains)):
        raise UserStoreError(f"{text}: not in the gateway's domains ({', '.join(domains)})")
    return addr.key


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserStoreError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserStoreError(f"the password must have at most {MAX_PASSWORD} characters")


def get_user(session: Session, address: str) -> User | None:
    key = normalise_login(address)
    return session.scalar(select(User).where(User.address == key)) if key else None


def require_user(session: Session, address: str) -> User:
    user = get_user(session, address)
    if user is None:
        raise UserStoreError(f"no such user: {address}")
    return user


def add_user(session: Session, address: str, password: str, *, display_name: str = "",
             aliases: Iterable[str] = (), domains: Sequence[str] | None = None) -> User:
    """Create an enabled user; refuses an existing address, a bad address or a short password."""
    key = canonical_address(address, domains)
    check_password(password)
    alias_keys = _aliases(aliases, domains)
    if get_user(session, key) is not None:
        raise UserStoreError(f"user {key} already exists")
    user = User(address=key, display_name=display_name, password_hash=hash_password(password),
                aliases=alias_keys, disabled=False)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        # Another command added the same address between our check and the insert.
        raise UserStoreError(f"user {key} already exists") from None
    return user


def set_password(session: Session, address: str, password: str) -> User:
    check_password(password)
    user = require_user(session, address)
    user.password_hash = hash_password(password)
    session.flush()
    return user


def set_disabled(session: Session, address: str, disabled: bool) -> User:
    user = require_user(session, address)
    user.disabled = disabled
    session.flush()
    return user


def set_aliases(session: Session, address: str, aliases: Iterable[str],
                domains: Sequence[str] | None = None) -> User:
    """Replace the user's extra sender addresses."""
    user = require_user(session, address)
    user.aliases = _aliases(aliases, domains)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.address)))


def _aliases(aliases: Iterable[str], domains: Sequence[str] | None) -> list[str]:
    return sorted({canonical_address(a, domains) for a in aliases})
