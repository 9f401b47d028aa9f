"""Abuse throttles for the submission listener: login delays, message rates, connection counts.

All three are pure, in-memory and per process (each gateway process keeps its own counts), with
an injectable monotonic clock so tests never sleep. The listener asks them before it acts:

- `AuthFailureDelay`: before checking a password, wait `delay(ip, login)` seconds; afterwards
  report `failure(ip, login)` or `success(ip, login)`. The delay grows per client IP and per login
  name independently and the larger one applies. There is no lockout and no global lock, so an
  attacker hammering a victim's login can at worst make the victim wait `max_delay` seconds.
- `RateLimiter`: messages per hour per key (user or IP), sliding window, 0 = unlimited.
- `ConnectionLimiter`: concurrent connections, in total and per IP.

IPv6 clients are counted per /64 (one subscriber usually holds a whole /64), so an attacker
cannot escape the per-IP counts by rotating addresses inside their own prefix.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailgw.auth.base import normalise_login

if TYPE_CHECKING:
    from mailgw.config import Config

Clock = Callable[[], float]


@functools.lru_cache(maxsize=4096)
def ip_key(ip: str) -> str:
    """The key under which an IP is counted: IPv4 as is, IPv6 by its /64, mapped v4 as v4.

    Remembered: it is asked several times per message (connection count, rates, command gate)
    and parsing the address cost 3 us (IPv6: 16 us) each time."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip  # not an IP (e.g. a unix socket peer): count it under its own name
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


@functools.lru_cache(maxsize=4096)
def login_key(login: str, default_domain: str | None = None) -> str:
    """The key under which a login name is counted: its canonical address when it parses.
    Remembered, as ip_key: the same few users send message after message (address parsing
    was about 1 % of the gateway's CPU per message).

    Every spelling of one account (case, a full-width or IDN form of the domain, the bare user
    name) must share one counter, or an attacker gets a fresh budget per spelling. What does not
    parse is counted lower-cased and cut to a bounded length (it can never log in anyway).
    """
    return normalise_login(login, default_domain) or login.strip().lower()[:320]


@dataclass
class _Failures:
    count: int
    last: float


class AuthFailureDelay:
    """Growing delay after failed logins, per client IP and per login name.

    After n failures the delay for that key is `base * 2**(n-1)`, capped at `max_delay`. A key
    is forgotten after `reset_after` quiet seconds; a successful login clears the login's count
    (not the IP's: an attacker with one valid account must not be able to wipe their IP's
    record). At most `max_entries` keys of each kind are kept, least recently failed evicted
    first, so memory stays bounded whatever a client sends.
    """

    def __init__(self, base: float, max_delay: float, *, reset_after: float = 900.0,
                 max_entries: int = 100_000, default_domain: str | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.base = base
        self.default_domain = default_domain
        self.max_delay = max_delay
        self.reset_after = reset_after
        self.max_entries = max_entries
        self._clock = clock
        self._by_ip: OrderedDict[str, _Failures] = OrderedDict()
        self._by_login: OrderedDict[str, _Failures] = OrderedDict()

    def delay(self, ip: str, login: str) -> float:
        """Seconds to wait before checking this attempt's password: max(IP delay, login delay)."""
        now = self._clock()
        return max(self._delay(self._by_ip, ip_key(ip), now),
                   self._delay(self._by_login, self._login(login), now))

    def failure(self, ip: str, login: str) -> None:
        """Record a failed login (wrong password, unknown or disabled user: all the same)."""
        now = self._clock()
        self._bump(self._by_ip, ip_key(ip), now)
        self._bump(self._by_login, self._login(login), now)

    def success(self, ip: str, login: str) -> None:
        """Record a successful login: the login's count is cleared, the IP's stays."""
        self._by_login.pop(self._login(login), None)

    def failures(self, ip: str | None = None, login: str | None = None) -> int:
        """Current failure count for an IP or a login (for logs and tests)."""
        now = self._clock()
        table, key = ((self._by_ip, ip_key(ip)) if ip is not None
                      else (self._by_login, self._login(login or "")))
        entry = self._live(table, key, now)
        return entry.count if entry else 0

    def __len__(self) -> int:
        return len(self._by_ip) + len(self._by_login)

    def _login(self, login: str) -> str:
        return login_key(login, self.default_domain)

    def _live(self, table: OrderedDict[str, _Failures], key: str, now: float) -> _Failures | None:
        entry = table.get(key)
        if entry is not None and now - entry.last >= self.reset_after:
            del table[key]
            return None
        return entry

    def _delay(self, table: OrderedDict[str, _Failures], key: str, now: float) -> float:
        entry = self._live(table, key, now)
        if entry is None or entry.count == 0:
            return 0.0
        # Cap the exponent first: 2**n for a large n would overflow a float.
        return min(self.max_delay, self.base * 2.0 ** min(entry.count - 1, 60))

    def _bump(self, table: OrderedDict[str, _Failures], key: str, now: float) -> None:
        entry = self._live(table, key, now)
        if entry is None:
            table[key] = _Failures(1, now)
        else:
            entry.count += 1
            entry.last = now
            table.move_to_end(key)
        while len(table) > self.max_entries:
            table.popitem(last=False)


@dataclass
class _Window:
    start: float  # start of the current fixed window
    current: int  # events in the current window
    previous: int  # events in the window before it


class RateLimiter:
    """At most `limit` events per `window` seconds per key (0: unlimited).

    A sliding-window counter: the count is the current fixed window plus the previous one
    weighted by how much of it still overlaps the sliding window. O(1) memory per key (a log of
    timestamps would cost thousands of entries per busy IP), and never more permissive than
    `limit` in any window by more than rounding.
    """

    def __init__(self, limit: int, window: float = 3600.0, *, max_entries: int = 100_000,
                 clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        self._keys: OrderedDict[str, _Window] = OrderedDict()

    def check_and_record(self, key: str) -> bool:
        """True and count the event if `key` is under its limit; False (nothing counted) if not."""
        if self.retry_after(key) > 0:
            return False
        self.record(key)
        return True

    def allowed(self, key: str) -> bool:
        return self.retry_after(key) == 0

    def record(self, key: str) -> None:
        """Count one event for `key` without checking (see `check_and_record_all`)."""
        if self.limit <= 0:
            return
        now = self._clock()
        w = self._roll(key, now)
        if w is None:
            w = self._keys[key] = _Window(now, 0, 0)
        w.current += 1
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_entries:
            self._keys.popitem(last=False)

    def retry_after(self, key: str) -> float:
        """Seconds until one more event for `key` is allowed (0.0: allowed now)."""
        if self.limit <= 0:
            return 0.0
        now = self._clock()
        w = self._roll(key, now)
        if w is None:
            return 0.0
        elapsed = (now - w.start) / self.window  # fraction of the current window gone
        budget = self.limit - 1  # what the weighted count may be before this event
        if w.previous * (1 - elapsed) + w.current <= budget:
            return 0.0
        if w.current <= budget:
            # Wait in this window until the previous window's weight has faded enough.
            need = 1 - (budget - w.current) / w.previous
            return max((need - elapsed) * self.window, 1e-3)
        # This window alone is full: wait into the next one, where it becomes `previous`.
        need = 1 - budget / w.current
        return max((1 - elapsed + need) * self.window, 1e-3)

    def _roll(self, key: str, now: float) -> _Window | None:
        """The key's window moved forward to `now`; None if unknown or idle for two windows."""
        w = self._keys.get(key)
        if w is None:
            return None
        passed = math.floor((now - w.start) / self.window)
        if passed == 1:
            w.start, w.previous, w.current = w.start + self.window, w.current, 0
        elif passed >= 2:
            del self._keys[key]  # idle for two windows: forget it
            return None
        return w


def check_and_record_all(*checks: tuple[RateLimiter, str]) -> float:
    """Check several limits (e.g. per user and per IP); record in all only if all allow.

    Returns 0.0 when the event was recorded, else the seconds until every limit allows it.
    """
    wait = max((limiter.retry_after(key) for limiter, key in checks), default=0.0)
    if wait > 0:
        return wait
    for limiter, key in checks:
        limiter.record(key)
    return 0.0


class ConnectionLimiter:
    """Concurrent connections, in total and per IP; `acquire` on connect, `release` on close."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.total = 0
        self._per_ip: dict[str, int] = {}

    def acquire(self, ip: str) -> bool:
        """Take a slot for a new connection from `ip`; False (nothing taken) if over a limit."""
        key = ip_key(ip)
        if self.total >= self.max_total or self._per_ip.get(key, 0) >= self.max_per_ip:
            return False
        self.total += 1
        self._per_ip[key] = self._per_ip.get(key, 0) + 1
        return True

    def release(self, ip: str) -> None:
        """Give back the slot of a closed connection (call exactly once per successful acquire)."""
        key = ip_key(ip)
        n = self._per_ip.get(key, 0)
        if n <= 0:
            return  # a double release must never push the counts below zero
        if n == 1:
            del self._per_ip[key]  # idle IPs cost no memory
        else:
            self._per_ip[key] = n - 1
        self.total -= 1

    def count(self, ip: str) -> int:
        return self._per_ip.get(ip_key(ip), 0)


@dataclass
class SubmissionThrottles:
    """The throttles of one submission listener process, built from `[submission]`."""

    auth: AuthFailureDelay
    per_user: RateLimiter
    per_ip: RateLimiter
    connections: ConnectionLimiter

    @classmethod
    def from_config(cls, config: Config, clock: Clock = time.monotonic) -> SubmissionThrottles:
        sub = config.submission
        return cls(
            auth=AuthFailureDelay(sub.auth_delay_base, sub.auth_delay_max,
                                  default_domain=config.gateway.domains[0], clock=clock),
            per_user=RateLimiter(sub.rate_per_user, clock=clock),
            per_ip=RateLimiter(sub.rate_per_ip, clock=clock),
            connections=ConnectionLimiter(sub.max_connections, sub.max_connections_per_ip),
        )

    def message_wait(self, user: str | None, ip: str) -> float:
        """Check and count one message: 0.0 if allowed, else seconds until it would be."""
        checks = [(self.per_ip, ip_key(ip))]
        if user:
            checks.append((self.per_user, login_key(user)))
        return check_and_record_all(*checks)
