"""Queue operations on both engines: leased claims, expired leases, concurrent claimers, results
with backoff and expiry, and the operator functions behind `mailgw queue`."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from mailgw.delivery.result import Result
from mailgw.queue import admin, store
from mailgw.store.db import session_factory
from mailgw.store.models import QueueEntry, utcnow
from tests.delivery.conftest import enqueue, entries, message


def _claim(engine, node, limit=100, lease=60.0, now=None):
    with session_factory(engine).begin() as s:
        return store.claim_due(s, node, limit, lease, now=now)


def test_claim_leases_entries_and_groups_a_message(engine):
    q1 = enqueue(engine, ["a@x.org", "b@y.org"])
    q2 = enqueue(engine, ["c@x.org"])
    got = _claim(engine, "n1")
    assert [(c.queue_id, c.recipient) for c in got] == [
        (q1, "a@x.org"), (q1, "b@y.org"), (q2, "c@x.org")]
    assert got[1].domain == "y.org" and got[0].attempts == 0
    e = entries(engine, q1)["a@x.org"]
    assert e.locked_by == "n1" and e.locked_until > utcnow() + timedelta(seconds=50)
    # Leased: nobody else gets them, not even the same node, until the lease runs out.
    assert _claim(engine, "n2") == []
    assert _claim(engine, "n1") == []


def test_an_expired_lease_is_claimed_again(engine):
    qid = enqueue(engine, ["a@x.org"])
    assert len(_claim(engine, "crashed", lease=60)) == 1
    later = utcnow() + timedelta(seconds=61)
    again = _claim(engine, "n2", now=later)
    assert [c.queue_id for c in again] == [qid]
    assert entries(engine, qid)["a@x.org"].locked_by == "n2"


def test_claim_respects_limit_due_time_and_parked_messages(engine):
    enqueue(engine, [f"r{i}@x.org" for i in range(5)])
    parked = enqueue(engine, ["p@x.org"])
    with session_factory(engine).begin() as s:
        store.park(s, "n1", message(engine, parked).id, "archive", "boom")
    assert len(_claim(engine, "n1", limit=3)) == 3
    assert len(_claim(engine, "n1", limit=10)) == 2  # the parked message is not claimed
    future = enqueue(engine, ["f@x.org"])
    with session_factory(engine).begin() as s:
        e = s.get(QueueEntry, entries(engine, future)["f@x.org"].id)
        assert e is not None
        e.next_attempt_at = utcnow() + timedelta(hours=1)
    assert _claim(engine, "n1") == []


def test_concurrent_claimers_get_disjoint_entries(engine):
    """PostgreSQL: the second claimer skips the rows the first one holds (SKIP LOCKED) and does
    not wait; SQLite: it waits for the first (BEGIN IMMEDIATE), then sees the leases."""
    enqueue(engine, [f"r{i}@x.org" for i in range(10)])
    sessions = session_factory(engine)
    other: list[store.Claimed] = []
    with sessions.begin() as s:
        first = store.claim_due(s, "n1", 5, 60)
        t = threading.Thread(target=lambda: other.extend(_claim(engine, "n2")))
        t.start()
        time.sleep(0.3)  # let n2 run while n1's transaction is still open
    t.join(10)
    assert not t.is_alive()
    ids1 = {c.entry_id for c in first}
    ids2 = {c.entry_id for c in other}
    assert len(ids1) == 5 and len(ids2) == 5 and not ids1 & ids2


def test_backoff_doubles_up_to_retry_max():
    assert [store.backoff(n, 60, 3600) for n in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600]


def _record(engine, results, node="n1", max_age=86400.0, now=None):
    with session_factory(engine).begin() as s:
        return store.record_results(s, node, "smtp:[h]:25", results, retry_initial=60,
                                    retry_max=3600, max_age=max_age, now=now)


def test_results_per_recipient_backoff_and_done(engine):
    qid = enqueue(engine, ["a@x.org", "b@x.org", "c@x.org"])
    ids = {c.recipient: c.entry_id for c in _claim(engine, "n1")}
    now = utcnow()
    out = _record(engine, [(ids["a@x.org"], Result("delivered", "250 ok")),
                           (ids["b@x.org"], Result("permanent", "550 5.1.1 no")),
                           (ids["c@x.org"], Result("temporary", "451 4.3.0 later"))], now=now)
    assert out == {ids["a@x.org"]: "delivered", ids["b@x.org"]: "bounced",
                   ids["c@x.org"]: "deferred"}
    es = entries(engine, qid)
    c = es["c@x.org"]
    assert c.attempts == 1 and c.locked_by is None and c.last_reply == "451 4.3.0 later"
    assert abs((c.next_attempt_at - now).total_seconds() - 60) < 1
    assert es["b@x.org"].final_at is not None and message(engine, qid).status == "accepted"
    # Second failure: twice the wait.
    _claim(engine, "n1", now=now + timedelta(seconds=61))
    _record(engine, [(c.id, Result("temporary", "451 again"))], now=now + timedelta(seconds=61))
    c = entries(engine, qid)["c@x.org"]
    assert c.attempts == 2
    assert abs((c.next_attempt_at - now).total_seconds() - 181) < 1
    _record(engine, [(c.id, Result("delivered", "250 ok"))])
    assert message(engine, qid).status == "done"


def test_temporary_failure_past_max_age_expires_and_retry_waits_no_longer(engine):
    qid = enqueue(engine, ["a@x.org"])
    [c] = _claim(engine, "n1")
    received = message(engine, qid).received_at
    # Backoff would say 60 s, but the message expires in 10 s: the next try is at expiry.
    _record(engine, [(c.entry_id, Result("temporary", "451"))], max_age=10, now=received)
    e = entries(engine, qid)["a@x.org"]
    assert e.status == "deferred" and e.next_attempt_at == received + timedelta(seconds=10)
    _record(engine, [(c.entry_id, Result("temporary", "451"))], max_age=10,
            now=received + timedelta(seconds=10))
    assert entries(engine, qid)["a@x.org"].status == "expired"
    assert message(engine, qid).status == "done"


def test_a_final_status_is_never_overwritten(engine):
    qid = enqueue(engine, ["a@x.org"])
    [c] = _claim(engine, "n1")
    with session_factory(engine).begin() as s:
        assert admin.delete(s, qid) == 1
    assert _record(engine, [(c.entry_id, Result("temporary", "451"))]) == {c.entry_id: "deleted"}
    e = entries(engine, qid)["a@x.org"]
    assert e.status == "deleted" and e.attempts == 0 and "mailgw queue delete" in e.last_reply
    assert message(engine, qid).status == "done"


def test_admin_list_show_retry(engine):
    q1 = enqueue(engine, ["a@x.org"])
    q2 = enqueue(engine, ["b@x.org"])
    [c1, c2] = _claim(engine, "n1")
    _record(engine, [(c1.entry_id, Result("temporary", "451 4.4.1 down")),
                     (c2.entry_id, Result("delivered", "250 ok"))])
    with session_factory(engine)() as s:
        assert [m["queue_id"] for m in admin.list_messages(s)] == [q1]
        assert [m["queue_id"] for m in admin.list_messages(s, status="deferred")] == [q1]
        assert [m["queue_id"] for m in admin.list_messages(s, status="done")] == [q2]
        info = admin.show(s, q1)
        assert admin.show(s, "NOPE") is None
    assert info is not None
    [r] = info["recipients"]
    assert r["status"] == "deferred" and r["attempts"] == 1 and r["last_reply"] == "451 4.4.1 down"
    assert r["next_attempt"] is not None
    assert _claim(engine, "n1") == []  # not due for a minute
    with session_factory(engine).begin() as s:
        assert admin.retry(s, q1) == 1
    assert [c.queue_id for c in _claim(engine, "n1")] == [q1]
    with session_factory(engine).begin() as s, pytest.raises(LookupError):
        admin.retry(s, "NOPE")


def test_two_workers_finishing_one_message_at_once_mark_it_done(engine):
    """Each worker records its own recipient while the other's transaction is still open: the
    message must still end up done (no write skew on PostgreSQL)."""
    qid = enqueue(engine, ["a@x.org", "b@y.org"])
    [a, b] = _claim(engine, "n1")
    sessions = session_factory(engine)

    def record(s, c):
        store.record_results(s, "n1", "smtp:[h]:25", [(c.entry_id, Result("delivered", "250"))],
                             retry_initial=60, retry_max=3600, max_age=86400)

    with sessions.begin() as s1:
        record(s1, a)
        t = threading.Thread(target=lambda: _in_tx(sessions, record, b))
        t.start()
        time.sleep(0.3)  # the second worker runs (or waits) while the first is open
    t.join(10)
    assert not t.is_alive()
    assert {e.status for e in entries(engine, qid).values()} == {"delivered"}
    assert message(engine, qid).status == "done"


def _in_tx(sessions, fn, *args):
    with sessions.begin() as s:
        fn(s, *args)
