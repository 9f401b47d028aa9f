"""mailgw.store.direct runs hot statements on the SQLite driver: the rows it writes and reads
must be exactly what SQLAlchemy's own execution writes and reads (on PostgreSQL it is that
execution)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, update

from mailgw.store.db import session_factory
from mailgw.store.direct import Direct
from mailgw.store.models import MESSAGES, User

USERS = User.__table__

WHEN = datetime(2026, 11, 26, 8, 30, 15, 123456, tzinfo=UTC)


def _message(queue_id: str, **extra: Any) -> dict[str, Any]:
    # Only some columns: the rest must get their defaults (status, verdict, received_at…).
    return {"queue_id": queue_id, "direction": "outbound", "mail_from": "a@phutho.gov.vn",
            "recipients": ["b@example.org", "c@gmail.com"], "size": 3, "content": b"x\r\n",
            "verdict_detail": {"rule": "r", "n": [1, 2]}, **extra}


def _rows(session: Any, table: Any, key: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(select(table).order_by(table.c[key]))]


def test_insert_writes_what_sqlalchemy_writes(engine) -> None:
    Session = session_factory(engine)
    with Session.begin() as s:
        direct = Direct(insert(MESSAGES)).insert(s, [_message("D1", received_at=WHEN),
                                                     _message("D2", received_at=WHEN)])
        plain = list(s.scalars(insert(MESSAGES).returning(MESSAGES.c.id), [
            _message("S1", received_at=WHEN), _message("S2", received_at=WHEN)]))
    with Session() as s:
        rows = {r["queue_id"]: r for r in _rows(s, MESSAGES, "id")}
    assert [rows["D1"]["id"], rows["D2"]["id"]] == direct
    assert [rows["S1"]["id"], rows["S2"]["id"]] == plain
    for ours, theirs in (("D1", "S1"), ("D2", "S2")):
        a = {k: v for k, v in rows[ours].items() if k not in ("id", "queue_id")}
        b = {k: v for k, v in rows[theirs].items() if k not in ("id", "queue_id")}
        assert a == b
    assert rows["D1"]["received_at"] == WHEN  # aware UTC, microseconds kept
    assert rows["D1"]["status"] == "accepted" and rows["D1"]["verdict"] == "allow"


def test_a_callable_default_is_called_at_insert(engine) -> None:
    Session = session_factory(engine)
    before = datetime.now(UTC)
    with Session.begin() as s:
        Direct(insert(MESSAGES)).insert(s, [_message("T1")])
    with Session() as s:
        (row,) = _rows(s, MESSAGES, "id")
    assert before <= row["received_at"] <= datetime.now(UTC)


@pytest.mark.parametrize("count", [1, 2, 5])
def test_expanding_select_and_update(engine, count: int) -> None:
    Session = session_factory(engine)
    with Session.begin() as s:
        pks = Direct(insert(MESSAGES)).insert(
            s, [_message(f"E{i}", received_at=WHEN + timedelta(seconds=i)) for i in range(6)])
    ids = bindparam("ids", expanding=True)
    chosen = pks[:count]
    select_some = Direct(select(MESSAGES.c.id, MESSAGES.c.received_at, MESSAGES.c.recipients)
                         .where(MESSAGES.c.id.in_(ids)).order_by(MESSAGES.c.id), expanding="ids")
    mark = Direct(update(MESSAGES).where(MESSAGES.c.id.in_(ids)).values(status="done"),
                  expanding="ids")
    with Session.begin() as s:
        got = select_some.all(s, {"ids": chosen})
        assert got == [tuple(r) for r in s.execute(select_some.stmt, {"ids": chosen})]
        assert got[0][1] == WHEN and got[0][2] == ["b@example.org", "c@gmail.com"]
        assert mark.all(s, {"ids": chosen}) == []
    with Session() as s:
        statuses = {r["id"]: r["status"] for r in _rows(s, MESSAGES, "id")}
    assert {pk for pk, st in statuses.items() if st == "done"} == set(chosen)


def test_many_updates_each_row_and_fills_onupdate(engine) -> None:
    Session = session_factory(engine)
    with Session.begin() as s:
        s.execute(insert(USERS), [
            {"address": f"u{i}@phutho.gov.vn", "password_hash": "h",
             "created_at": WHEN, "updated_at": WHEN} for i in range(3)])
    rename = Direct(update(USERS).where(USERS.c.address == bindparam("a"))
                    .values(display_name=bindparam("name")))
    with Session.begin() as s:
        rename.many(s, [{"a": "u0@phutho.gov.vn", "name": "Nguyễn Văn A"},
                        {"a": "u2@phutho.gov.vn", "name": "Trần Thị B"}])
    with Session() as s:
        users = {r["address"]: r for r in _rows(s, USERS, "address")}
    assert users["u0@phutho.gov.vn"]["display_name"] == "Nguyễn Văn A"
    assert users["u1@phutho.gov.vn"]["display_name"] == ""
    assert users["u2@phutho.gov.vn"]["display_name"] == "Trần Thị B"
    assert users["u0@phutho.gov.vn"]["updated_at"] > WHEN  # the model's onupdate ran
    assert users["u1@phutho.gov.vn"]["updated_at"] == WHEN


def test_pending_orm_changes_are_flushed_first(engine) -> None:
    from mailgw.store.models import Message

    Session = session_factory(engine)
    with Session.begin() as s:
        s.add(Message(**_message("F1", received_at=WHEN)))
        rows = Direct(select(MESSAGES.c.queue_id)).all(s, {})
    assert rows == [("F1",)]
