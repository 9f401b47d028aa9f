"""The violation register on SQLite and PostgreSQL: the chain verifies; an edited, a deleted, a
reordered record is each named; records cut off the end are caught against a kept head; two
processes appending at once keep one chain."""

from __future__ import annotations

import itertools
import multiprocessing
import time

import pytest
from sqlalchemy import delete, update

from mailgw.store.db import make_engine, session_factory
from mailgw.store.models import Violation
from mailgw.violations import register

EVIDENCE = [{"part": "attachment qd.pdf", "signal": "document_number",
             "text": "Số: 2445/QĐ-UBND"}]


def add(engine, n: int, sender: str = "nguyenvana.stc@phutho.gov.vn",
        pause: float = 0.0) -> list[str]:
    refs = []
    for i in range(n):
        if i and pause:
            time.sleep(pause)
        with session_factory(engine).begin() as s:
            v = register.append(
                s, direction="outbound", sender=sender, auth_user=sender, unit="stc",
                recipients=[f"nguoinhan{i}@gmail.com"], action="reject",
                reasons=["official_document_to_webmail"],
                rules=["official-document-to-webmail"], evidence=EVIDENCE,
                policy_version="abc", queue_id=f"Q{i}", message_id=f"<{i}@x>")
            refs.append(v.reference)
    return refs


def verify(engine, kept=None) -> register.VerifyResult:
    with session_factory(engine)() as s:
        return register.verify(s, kept)


def test_chain_verifies_and_references_count_up(engine) -> None:
    refs = add(engine, 5)
    assert refs[0].endswith("-000001") and refs[-1].endswith("-000005")
    result = verify(engine)
    assert result.ok and result.records == 5 and result.head_seq == 5
    with session_factory(engine)() as s:
        rows = s.query(Violation).order_by(Violation.seq).all()
        assert rows[0].prev_hash == register.GENESIS
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))


def test_empty_register_verifies() -> None:
    engine = make_engine("sqlite://")
    from mailgw.store.db import upgrade

    upgrade(engine)
    assert verify(engine).ok and verify(engine).records == 0


def test_edited_record_is_named(engine) -> None:
    add(engine, 5)
    with session_factory(engine).begin() as s:
        s.execute(update(Violation).where(Violation.seq == 3)
                  .values(sender="someone.else@phutho.gov.vn"))
    broken = verify(engine).broken
    assert broken is not None and broken.seq == 3 and "edited" in broken.problem


def test_edited_evidence_is_named(engine) -> None:
    add(engine, 4)
    with session_factory(engine).begin() as s:
        s.execute(update(Violation).where(Violation.seq == 2).values(evidence=[]))
    broken = verify(engine).broken
    assert broken is not None and broken.seq == 2


def test_deleted_record_is_named(engine) -> None:
    refs = add(engine, 5)
    with session_factory(engine).begin() as s:
        s.execute(delete(Violation).where(Violation.seq == 2))
    broken = verify(engine).broken
    assert broken is not None and broken.seq == 2 and "deleted" in broken.problem
    assert broken.reference == refs[1]


def test_reordered_records_are_named(engine) -> None:
    add(engine, 5)
    # Swap the contents of records 2 and 4 (each keeps its own hash): positions and links lie.
    with session_factory(engine).begin() as s:
        r2, r4 = s.get(Violation, 2), s.get(Violation, 4)
        fields = [c.key for c in Violation.__table__.columns if c.key not in ("seq",
                                                                                "reference")]
        a = {f: getattr(r2, f) for f in fields}
        b = {f: getattr(r4, f) for f in fields}
        for f in fields:
            setattr(r2, f, b[f])
            setattr(r4, f, a[f])
    broken = verify(engine).broken
    assert broken is not None and broken.seq == 2


def test_rehashed_edit_breaks_the_next_link(engine) -> None:
    # An editor who recomputes the edited record's hash is caught at the next record.
    add(engine, 4)
    with session_factory(engine).begin() as s:
        v = s.get(Violation, 2)
        v.action = "flag"
        v.hash = register.compute_hash(v)
    broken = verify(engine).broken
    assert broken is not None and broken.seq == 3 and "previous" in broken.problem


def test_records_cut_off_the_end_are_caught_against_a_kept_head(engine) -> None:
    add(engine, 4)
    kept = (verify(engine).head_seq, verify(engine).head_hash)
    with session_factory(engine).begin() as s:
        s.execute(delete(Violation).where(Violation.seq == 4))
    assert verify(engine).ok  # without the kept head a cut end looks like a shorter chain
    broken = verify(engine, kept).broken
    assert broken is not None and broken.seq == 4 and "missing" in broken.problem


def _writer(url: str, n: int, name: str, start: multiprocessing.synchronize.Barrier) -> None:
    engine = make_engine(url, "NORMAL")
    start.wait(30)  # both processes are ready: they append at the same time
    # A short pause between appends gives the other writer its turn: SQLite's busy handler
    # polls, so without it one process may commit all its records before the other wakes.
    add(engine, n, sender=f"{name}@phutho.gov.vn", pause=0.05)
    engine.dispose()


@pytest.mark.timeout(120)
def test_two_processes_appending_at_once_keep_one_chain(engine, db_url) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(db_url, 40, f"writer{i}", start))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
    assert [p.exitcode for p in procs] == [0, 0]
    result = verify(engine)
    assert result.ok, result.broken
    assert result.records == 80
    with session_factory(engine)() as s:
        senders = [v.sender for v in s.query(Violation).order_by(Violation.seq)]
    # Both writers really interleaved (otherwise this test would not show anything).
    switches = sum(1 for a, b in itertools.pairwise(senders) if a != b)
    assert switches >= 2, senders
