"""Throttles: login delays per IP and per user, message rates, connection limits (fake clock)."""

from __future__ import annotations

import pytest

from mailgw.config import load
from mailgw.smtp.throttle import (
    AuthFailureDelay,
    ConnectionLimiter,
    RateLimiter,
    SubmissionThrottles,
    check_and_record_all,
    ip_key,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --- AuthFailureDelay -------------------------------------------------------------------------


def test_no_delay_without_failures(clock):
    d = AuthFailureDelay(0.5, 30, clock=clock)
    assert d.delay("192.0.2.1", "a@phutho.gov.vn") == 0.0


def test_delay_doubles_per_ip_and_is_capped(clock):
    d = AuthFailureDelay(0.5, 30, clock=clock)
    seen = []
    for i in range(10):
        # A different login each time: only the IP's count can explain the growth.
        d.failure("192.0.2.1", f"user{i}@phutho.gov.vn")
        seen.append(d.delay("192.0.2.1", "someone-new@phutho.gov.vn"))
    assert seen[:7] == [0.5, 1, 2, 4, 8, 16, 30]
    assert seen[7:] == [30, 30, 30]


def test_delay_grows_per_user_across_ips(clock):
    d = AuthFailureDelay(1, 30, clock=clock)
    for i in range(4):
        d.failure(f"198.51.100.{i}", "chutich@phutho.gov.vn")
    # A fresh IP trying the attacked login waits the login's delay: 1 * 2**3.
    assert d.delay("203.0.113.9", "chutich@phutho.gov.vn") == 8
    # Case variants share the counter.
    assert d.delay("203.0.113.9", "ChuTich@PHUTHO.gov.vn") == 8
    # Other logins from a fresh IP are not slowed.
    assert d.delay("203.0.113.9", "other@phutho.gov.vn") == 0


def test_spellings_of_one_login_share_a_counter(clock):
    d = AuthFailureDelay(1, 100, default_domain="phutho.gov.vn", clock=clock)
    for i, spelling in enumerate(["chutich@phutho.gov.vn", "CHUTICH@PHUTHO.GOV.VN",
                                  "chutich@ＰＨＵＴＨＯ.gov.vn", " chutich ",
                                  '"chutich"@phutho.gov.vn']):
        d.failure(f"198.51.100.{i}", spelling)
    assert d.failures(login="chutich@phutho.gov.vn") == 5
    assert d.delay("203.0.113.1", "ChuTich") == 16
    # Garbage is still counted (bounded), it just never matches an account.
    d.failure("198.51.100.9", "x" * 10_000)
    assert d.failures(login="X" * 10_000) == 1


def test_applied_delay_is_max_of_ip_and_user(clock):
    d = AuthFailureDelay(1, 100, clock=clock)
    for _ in range(3):
        d.failure("192.0.2.1", "x@phutho.gov.vn")  # ip: 3, x: 3
    d.failure("192.0.2.1", "y@phutho.gov.vn")  # ip: 4, y: 1
    assert d.delay("192.0.2.1", "y@phutho.gov.vn") == 8  # ip wins
    assert d.delay("192.0.2.2", "x@phutho.gov.vn") == 4  # user wins


def test_victim_not_locked_out(clock):
    d = AuthFailureDelay(0.5, 30, clock=clock)
    victim = "chutich@phutho.gov.vn"
    # An attacker fails thousands of times against the victim's login from many IPs.
    for i in range(5000):
        d.failure(f"10.{i // 250}.{i % 250}.1", victim)
    # The victim, from their own IP, waits at most the cap and is then checked normally.
    assert d.delay("203.0.113.50", victim) == 30
    d.success("203.0.113.50", victim)
    assert d.delay("203.0.113.50", victim) == 0


def test_success_clears_login_but_not_ip(clock):
    d = AuthFailureDelay(1, 30, clock=clock)
    for _ in range(3):
        d.failure("192.0.2.1", "a@phutho.gov.vn")
    d.success("192.0.2.1", "a@phutho.gov.vn")
    assert d.failures(login="a@phutho.gov.vn") == 0
    assert d.failures(ip="192.0.2.1") == 3
    assert d.delay("192.0.2.1", "b@phutho.gov.vn") == 4


def test_counts_reset_after_quiet_period(clock):
    d = AuthFailureDelay(1, 30, reset_after=600, clock=clock)
    for _ in range(5):
        d.failure("192.0.2.1", "a@phutho.gov.vn")
    clock.advance(599)
    assert d.delay("192.0.2.1", "a@phutho.gov.vn") == 16
    clock.advance(2)
    assert d.delay("192.0.2.1", "a@phutho.gov.vn") == 0
    d.failure("192.0.2.1", "a@phutho.gov.vn")
    assert d.delay("192.0.2.1", "a@phutho.gov.vn") == 1


def test_memory_is_bounded(clock):
    d = AuthFailureDelay(1, 30, max_entries=100, clock=clock)
    for i in range(10_000):
        d.failure(f"10.0.{i // 256}.{i % 256}", f"u{i}@phutho.gov.vn")
    assert len(d) <= 200
    # The most recent offenders are the ones kept.
    assert d.failures(ip="10.0.39.15") == 1


def test_ipv6_counted_per_64(clock):
    d = AuthFailureDelay(1, 30, clock=clock)
    for i in range(4):
        d.failure(f"2001:db8:1:2::{i + 1}", f"u{i}@phutho.gov.vn")
    assert d.delay("2001:db8:1:2:ffff::9", "new@phutho.gov.vn") == 8
    assert d.delay("2001:db8:1:3::1", "new@phutho.gov.vn") == 0


@pytest.mark.parametrize(("ip", "key"), [
    ("192.0.2.1", "192.0.2.1"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("2001:db8::1", "2001:db8::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("not-an-ip", "not-an-ip"),
])
def test_ip_key(ip, key):
    assert ip_key(ip) == key


# --- RateLimiter ------------------------------------------------------------------------------


def test_rate_limit_counts_per_key(clock):
    r = RateLimiter(3, 3600, clock=clock)
    assert [r.check_and_record("a") for _ in range(4)] == [True, True, True, False]
    assert r.check_and_record("b")
    assert r.retry_after("b") == 0


def test_rate_limit_zero_is_unlimited(clock):
    r = RateLimiter(0, clock=clock)
    assert all(r.check_and_record("a") for _ in range(10_000))


def test_rate_limit_window_slides(clock):
    r = RateLimiter(10, 3600, clock=clock)
    for _ in range(10):
        assert r.check_and_record("u")
    wait = r.retry_after("u")
    assert 0 < wait <= 2 * 3600
    # Refused events are not counted: asking again does not push the wait further.
    assert not r.check_and_record("u")
    assert r.retry_after("u") == pytest.approx(wait)
    clock.advance(wait - 1)
    assert not r.check_and_record("u")
    clock.advance(1.01)
    assert r.check_and_record("u")


def test_rate_limit_never_exceeds_limit_in_any_hour(clock):
    r = RateLimiter(20, 3600, clock=clock)
    accepted: list[float] = []
    for _ in range(5 * 3600 // 30):  # one try every 30 s for five hours
        if r.check_and_record("u"):
            accepted.append(clock.now)
        clock.advance(30)
    for t in accepted:
        in_hour = [x for x in accepted if t <= x < t + 3600]
        assert len(in_hour) <= 20
    # ...and it is not needlessly strict: close to 20 per hour over the long run.
    assert len(accepted) >= 4 * 20


def test_rate_limit_forgets_idle_keys(clock):
    r = RateLimiter(1, 60, clock=clock)
    assert r.check_and_record("a")
    assert not r.check_and_record("a")
    clock.advance(121)
    assert r.check_and_record("a")


def test_check_and_record_all_records_only_when_all_allow(clock):
    per_user = RateLimiter(5, clock=clock)
    per_ip = RateLimiter(2, clock=clock)
    assert check_and_record_all((per_user, "u"), (per_ip, "ip")) == 0
    assert check_and_record_all((per_user, "u"), (per_ip, "ip")) == 0
    assert check_and_record_all((per_user, "u"), (per_ip, "ip")) > 0
    # The refused message did not use up the user's budget.
    for _ in range(3):
        assert per_user.check_and_record("u")
    assert not per_user.check_and_record("u")


# --- ConnectionLimiter ------------------------------------------------------------------------


def test_connection_limits_per_ip_and_total():
    c = ConnectionLimiter(max_total=3, max_per_ip=2)
    assert c.acquire("192.0.2.1")
    assert c.acquire("192.0.2.1")
    assert not c.acquire("192.0.2.1")  # per IP
    assert c.acquire("192.0.2.2")
    assert not c.acquire("192.0.2.3")  # total
    c.release("192.0.2.1")
    assert c.acquire("192.0.2.3")
    assert c.total == 3


def test_connection_release_never_goes_negative():
    c = ConnectionLimiter(max_total=1, max_per_ip=1)
    c.release("192.0.2.1")
    assert c.total == 0
    assert c.acquire("192.0.2.1")
    c.release("192.0.2.1")
    c.release("192.0.2.1")
    assert c.total == 0 and c.count("192.0.2.1") == 0
    assert c.acquire("192.0.2.9")


def test_submission_throttles_from_config(clock):
    cfg = load(environ={"MAILGW_SUBMISSION__RATE_PER_USER": "2",
                        "MAILGW_SUBMISSION__RATE_PER_IP": "3",
                        "MAILGW_SUBMISSION__MAX_CONNECTIONS_PER_IP": "1"})
    t = SubmissionThrottles.from_config(cfg, clock=clock)
    assert t.message_wait("a@phutho.gov.vn", "192.0.2.1") == 0
    assert t.message_wait("A@phutho.gov.vn", "192.0.2.1") == 0
    assert t.message_wait("a@phutho.gov.vn", "192.0.2.1") > 0  # user limit
    assert t.message_wait("b@phutho.gov.vn", "192.0.2.1") == 0
    assert t.message_wait("c@phutho.gov.vn", "192.0.2.1") > 0  # IP limit
    assert t.connections.acquire("192.0.2.1")
    assert not t.connections.acquire("192.0.2.1")
    assert t.auth.base == 0.5 and t.auth.max_delay == 30
