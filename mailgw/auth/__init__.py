"""Who may submit mail: the authenticator interface and its local (users table) implementation.

The submission listener holds one `Authenticator` (built by `make_authenticator` from
`submission.auth`) and calls `await authenticator.authenticate(login, password)` after AUTH
PLAIN/LOGIN. The answer is an `AuthResult` (canonical address + the sender addresses the user may
put in MAIL FROM and header From) or None, the same None for every kind of failure.
"""

from mailgw.auth.base import (
    AuthenticationUnavailable,
    Authenticator,
    AuthResult,
    make_authenticator,
    normalise_login,
)
from mailgw.auth.local import LocalAuthenticator, sender_addresses

__all__ = [
    "AuthResult",
    "AuthenticationUnavailable",
    "Authenticator",
    "LocalAuthenticator",
    "make_authenticator",
    "normalise_login",
    "sender_addresses",
]
