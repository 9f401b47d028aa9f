"""The authenticator contract shared by every password backend, and the factory from config.

An authenticator answers one question for the submission listener: do this login and password
belong to a user, and which sender addresses may that user use? Contract:

- `await authenticate(login, password)` returns an `AuthResult` or None. None covers unknown
  user, wrong password and disabled account alike, and each takes the same work, so neither the
  reply nor its timing tells an attacker which addresses exist. Blocking work (password hashing,
  database, network) runs off the event loop.
- A backend that cannot answer (database down, upstream server unreachable) raises
  `AuthenticationUnavailable`; the listener answers `454 4.7.0` (temporary), never "wrong
  password" and never "welcome".

How an `ImapAuthenticator` (`submission.auth = "imap"`, not built yet) fits this contract:
it would open an aioimaplib `IMAP4_SSL` (or STARTTLS) connection to `imap_proxy.upstream`,
verifying the server certificate, send `LOGIN` with the normalised login and the password, and
treat OK as success and NO as None, then `LOGOUT`. Connection or TLS errors and timeouts raise
`AuthenticationUnavailable` (the upstream is down, the password may be right). The canonical
address is the normalised login (the upstream has no other notion of it); the senders are that
address plus `submission.aliases[address]`. To spare the upstream a login per message it would
keep a short-lived cache of successful (login, argon2 hash of the password) pairs, expiring after
a few minutes, and never cache failures (a changed password must work at once). Unknown users
need no dummy work there: the upstream answers every login with the same NO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mailgw.config import ConfigError
from mailgw.smtp.addresses import AddressError, parse_address

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from mailgw.config import Config


class AuthenticationUnavailable(Exception):
    """The password backend cannot answer now; the client should retry later (454 4.7.0)."""


@dataclass(frozen=True)
class AuthResult:
    """A successful login: who it is and which sender addresses they may use."""

    address: str  # canonical, lower case, ASCII domain
    senders: frozenset[str] = field(default_factory=frozenset)  # includes `address`
    display_name: str = ""


class Authenticator(Protocol):
    """What the submission listener needs from a password backend (see the module text)."""

    async def authenticate(self, login: str, password: str) -> AuthResult | None: ...


def normalise_login(login: str, default_domain: str | None = None) -> str | None:
    """The canonical form of a login name (lower case, IDN domain as ASCII), None if malformed.

    A login without `@` is taken to be in `default_domain` (clients are often set up with just
    the user name). Local parts are compared case-insensitively too: two accounts differing only
    in case would invite impersonation.
    """
    login = login.strip()
    if "@" not in login and default_domain:
        login = f"{login}@{default_domain}"
    try:
        return parse_address(login, utf8=True).key
    except AddressError:
        return None


def make_authenticator(config: Config, session_factory: sessionmaker[Session]) -> Authenticator:
    """The authenticator chosen by `submission.auth`."""
    from mailgw.auth.cache import CachingAuthenticator
    from mailgw.auth.local import LocalAuthenticator

    kind = config.submission.auth
    if kind == "local":
        local = LocalAuthenticator(session_factory, config)
        ttl = float(config.submission.auth_cache_ttl)
        return CachingAuthenticator(local, ttl) if ttl > 0 else local
    if kind == "imap":
        raise ConfigError('submission.auth: "imap" (checking passwords against the upstream '
                          'IMAP server) is not available yet; use "local" and add users with '
                          "`mailgw users add`")
    raise ConfigError(f"submission.auth: unknown authenticator {kind!r}")
