"""DKIM in the delivery path: the worker runs the transform stage (in a thread), the sink gets
signed mail that verifies, a retry sends the same signed bytes, and a missing key parks the
message instead of sending it unsigned. SQLite only: DKIM stores nothing of its own."""

from __future__ import annotations

import pytest

from mailgw.delivery.worker import DeliveryService
from mailgw.dkim import keys
from mailgw.pipeline.post import default_stages
from mailgw.store.db import make_engine, upgrade
from tests.delivery.conftest import Sink, enqueue, entries, make_config, message, wait_for
from tests.dkim.conftest import DOMAIN, dkimpy_verify


@pytest.fixture
def sqlite_engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'mailgw.db'}", "NORMAL")
    upgrade(eng)
    yield eng
    eng.dispose()


async def test_worker_delivers_signed_mail(sqlite_engine, tmp_path) -> None:
    sink = await Sink().start()
    config = make_config(tmp_path, default=sink.hop)
    _, key = keys.add_key(keys.key_dir(config), DOMAIN, "s1", "rsa")
    # b is deferred once: its retry must send the very bytes a got.
    sink.handler.rcpt_replies["b@example.org"] = ["451 4.7.1 Try again later", "250 2.1.5 Ok"]
    svc = DeliveryService(config, sqlite_engine, "n1", stages=default_stages(config),
                          poll_interval=0.1)
    await svc.start()
    try:
        qid = enqueue(sqlite_engine, ["a@example.org", "b@example.org"])
        svc.wake()
        await wait_for(lambda: entries(sqlite_engine, qid)["b@example.org"].status == "deferred",
                       what="b deferred")
        # Retries deliver the stored bytes: they must be the signed ones.
        stored = message(sqlite_engine, qid).content
        await wait_for(lambda: message(sqlite_engine, qid).status == "done", what="done")
    finally:
        await svc.stop()
        await sink.stop()
    first, retry = sink.handler.received
    assert first.content.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    published = {keys.record_name(DOMAIN, "s1"): keys.txt_record("rsa", key)}
    assert dkimpy_verify(first.content, published) == [True]
    assert stored == first.content == retry.content
    assert retry.rcpt_tos == ["b@example.org"]


async def test_missing_key_parks_instead_of_sending_unsigned(sqlite_engine, tmp_path) -> None:
    sink = await Sink().start()
    config = make_config(tmp_path, default=sink.hop)
    svc = DeliveryService(config, sqlite_engine, "n1", stages=default_stages(config))
    await svc.start()
    try:
        qid = enqueue(sqlite_engine, ["a@example.org"])
        svc.wake()
        await wait_for(lambda: message(sqlite_engine, qid).status == "parked", what="parked")
    finally:
        await svc.stop()
        await sink.stop()
    m = message(sqlite_engine, qid)
    assert m.parked_stage == "transform"
    assert "DkimError" in (m.parked_error or "") and DOMAIN in (m.parked_error or "")
    assert sink.handler.received == []
