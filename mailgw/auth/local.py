"""The `local` authenticator: users table, argon2 hashes, aliases from the row and the config.

Every attempt costs one argon2 verification whatever the outcome: a known user's hash, or a
dummy hash with the same parameters for unknown logins, disabled users and malformed input. The
database read and the verification run together in a worker thread (`asyncio.to_thread`), so a
burst of logins never blocks the event loop (argon2-cffi releases the GIL while hashing).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from mailgw.auth import passwords
from mailgw.auth.base import AuthenticationUnavailable, AuthResult, normalise_login
from mailgw.store.db import describe
from mailgw.store.models import User

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from mailgw.config import Config

log = logging.getLogger(__name__)


def sender_addresses(user: User, config_aliases: dict[str, list[str]] | None = None) -> set[str]:
    """The addresses `user` may send as: their own, the row's aliases, `submission.aliases`."""
    found = {user.address, *(user.aliases or []), *(config_aliases or {}).get(user.address, [])}
    out = set()
    for a in found:
        key = normalise_login(str(a))
        if key:  # a malformed alias in the config or row grants nothing
            out.add(key)
    return out


class LocalAuthenticator:
    """`Authenticator` over the users table (see mailgw.auth.base for the contract)."""

    def __init__(self, session_factory: sessionmaker[Session], config: Config) -> None:
        self._sessions = session_factory
        self._aliases: dict[str, list[str]] = config.submission.aliases
        self._default_domain: str = config.gateway.domains[0]

    async def authenticate(self, login: str, password: str) -> AuthResult | None:
        return await asyncio.to_thread(self.authenticate_sync, login, password)

    def authenticate_sync(self, login: str, password: str) -> AuthResult | None:
        """Blocking form of `authenticate` (for threads and the CLI)."""
        address = normalise_login(login, self._default_domain)
        if address is None or not password or len(password) > passwords.MAX_PASSWORD:
            passwords.burn(password)
            return None
        user = self._load(address)
        if user is None:
            passwords.burn(password)
            return None
        ok = passwords.verify_password(user.password_hash, password)
        if not ok or user.disabled:
            return None
        if passwords.needs_rehash(user.password_hash):
            self._rehash(user.id, password)
        return AuthResult(address=user.address,
                          senders=frozenset(sender_addresses(user, self._aliases)),
                          display_name=user.display_name)

    def _load(self, address: str) -> User | None:
        try:
            with self._sessions() as s:
                return s.scalar(select(User).where(User.address == address))
        except SQLAlchemyError as exc:
            raise AuthenticationUnavailable(f"user store: {describe(exc)}") from None

    def _rehash(self, user_id: int, password: str) -> None:
        # The login already succeeded: a failed rehash is logged, not held against the user.
        try:
            with self._sessions() as s, s.begin():
                user = s.get(User, user_id)
                if user is not None:
                    user.password_hash = passwords.hash_password(password)
        except SQLAlchemyError as exc:
            log.warning("could not rehash the password of user %s: %s", user_id, describe(exc))
