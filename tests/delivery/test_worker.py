"""Delivery workers against a real SMTP sink on 127.0.0.1: retries, bounces, partial success,
expiry, parking, and two nodes sharing one store (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging

from mailgw.delivery.worker import DeliveryService
from mailgw.queue import admin
from mailgw.store.db import session_factory
from tests.delivery.conftest import (
    SENDER,
    Sink,
    bounces,
    enqueue,
    entries,
    free_port,
    message,
    plain_config,
    wait_for,
)


def _done(engine, qid):
    return lambda: message(engine, qid).status == "done"


async def test_delivers_all_recipients_in_one_transaction(engine, sink, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mailgw.delivery")
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1")
    await svc.start()
    try:
        qid = enqueue(engine, ["a@example.org", "b@example.org"])
        svc.wake()
        await wait_for(_done(engine, qid), what="message done")
    finally:
        await svc.stop()
    assert len(sink.handler.received) == 1
    got = sink.handler.received[0]
    assert got.mail_from == SENDER and sorted(got.rcpt_tos) == ["a@example.org", "b@example.org"]
    assert b"Subject: Test" in got.content
    es = entries(engine, qid)
    assert {e.status for e in es.values()} == {"delivered"}
    assert all(e.attempts == 1 and e.locked_by is None for e in es.values())
    assert message(engine, qid).processed_at is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "mailgw.delivery"]
    assert any(qid in line and "status=delivered" in line and f"127.0.0.1:{sink.port}" in line
               for line in lines), lines


async def test_sink_down_then_up_is_delivered_after_retry(engine, tmp_path):
    sink = Sink(port=free_port())
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1",
                          poll_interval=0.1)
    await svc.start()
    try:
        qid = enqueue(engine, ["a@example.org"])
        svc.wake()
        await wait_for(lambda: entries(engine, qid)["a@example.org"].status == "deferred",
                       what="deferred while the sink is down")
        e = entries(engine, qid)["a@example.org"]
        assert "connect to 127.0.0.1" in e.last_reply and e.next_attempt_at > e.last_attempt_at
        await sink.start()
        await wait_for(_done(engine, qid), what="delivered after the sink came up")
    finally:
        await svc.stop()
        await sink.stop()
    assert sink.copies_for("a@example.org") == 1
    assert entries(engine, qid)["a@example.org"].attempts >= 2


async def test_451_is_deferred_then_retried(engine, sink, tmp_path):
    sink.handler.rcpt_replies["a@example.org"] = ["451 4.7.1 Try again later", "250 2.1.5 Ok"]
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1",
                          poll_interval=0.1)
    await svc.start()
    try:
        qid = enqueue(engine, ["a@example.org"])
        svc.wake()
        await wait_for(_done(engine, qid))
    finally:
        await svc.stop()
    e = entries(engine, qid)["a@example.org"]
    assert e.status == "delivered" and e.attempts == 2
    assert sink.handler.rcpt_seen.count("a@example.org") == 2
    assert not bounces(engine)


async def test_550_bounces_to_the_sender_with_a_dsn(engine, sink, tmp_path):
    sink.handler.rcpt_replies["nobody@example.org"] = "550 5.1.1 No such user here"
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1",
                          poll_interval=0.1)
    await svc.start()
    try:
        qid = enqueue(engine, ["nobody@example.org"])
        svc.wake()
        # The bounce is queued in the store and then delivered to the sender like any mail.
        await wait_for(lambda: sink.copies_for(SENDER) == 1, what="bounce at the sink")
    finally:
        await svc.stop()
    e = entries(engine, qid)["nobody@example.org"]
    assert e.status == "bounced" and e.bounce_sent and e.attempts == 1
    assert message(engine, qid).status == "done"
    [b] = bounces(engine)
    assert b.direction == "local" and b.recipients == [SENDER]
    got = sink.handler.received[-1]
    assert got.mail_from == "" and got.rcpt_tos == [SENDER]
    dsn = email.message_from_bytes(got.content, policy=email.policy.default)
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["From"].addresses[0].addr_spec == "MAILER-DAEMON@phutho.gov.vn"
    assert "Thư không gửi được" in str(dsn["Subject"])
    human, status, headers = list(dsn.iter_parts())
    text = human.get_content()
    assert "không chuyển được tới người nhận" in text and "could not be delivered" in text
    assert text.index("Đây là thư") < text.index("This is an automatically")
    assert status.get_content_type() == "message/delivery-status"
    per_msg, per_rcpt = status.get_payload()
    assert per_msg["Reporting-MTA"] == "dns; gw.phutho.test"
    assert per_rcpt["Final-Recipient"] == "rfc822; nobody@example.org"
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert "550 5.1.1 No such user here" in per_rcpt["Diagnostic-Code"]
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Subject: Test" in headers.get_content()


async def test_partial_success_is_tracked_per_recipient(engine, sink, tmp_path):
    sink.handler.rcpt_replies.update({
        "bad@example.org": "550 5.1.1 No such user",
        "later@example.org": ["452 4.2.2 Mailbox full", "250 2.1.5 Ok"],
    })
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1",
                          poll_interval=0.1)
    await svc.start()
    try:
        qid = enqueue(engine, ["ok@example.org", "bad@example.org", "later@example.org"])
        svc.wake()
        await wait_for(_done(engine, qid), what="every recipient final")
        await wait_for(lambda: sink.copies_for(SENDER) == 1, what="bounce delivered")
    finally:
        await svc.stop()
    es = entries(engine, qid)
    assert es["ok@example.org"].status == "delivered" and es["ok@example.org"].attempts == 1
    assert es["bad@example.org"].status == "bounced"
    assert es["later@example.org"].status == "delivered" and es["later@example.org"].attempts == 2
    assert sink.copies_for("ok@example.org") == 1 and sink.copies_for("later@example.org") == 1
    # One bounce, naming only the recipient that failed.
    [b] = bounces(engine)
    assert b"bad@example.org" in b.content and b"later@example.org" not in b.content


async def test_expiry_bounces_with_4_4_7(engine, sink, tmp_path):
    sink.handler.rcpt_replies["slow@example.org"] = "451 4.3.0 Come back later"
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop, max_age=1.0), engine, "n1",
                          poll_interval=0.1)
    await svc.start()
    try:
        qid = enqueue(engine, ["slow@example.org"])
        svc.wake()
        await wait_for(lambda: entries(engine, qid)["slow@example.org"].status == "expired",
                       what="expired")
        await wait_for(lambda: sink.copies_for(SENDER) == 1, what="bounce delivered")
    finally:
        await svc.stop()
    assert entries(engine, qid)["slow@example.org"].attempts >= 2
    dsn = email.message_from_bytes(sink.handler.received[-1].content,
                                   policy=email.policy.default)
    human, status, _ = list(dsn.iter_parts())
    assert status.get_payload()[1]["Status"] == "4.4.7"
    assert "đã dừng gửi" in human.get_content()


async def test_a_bounce_is_never_bounced(engine, sink, tmp_path):
    sink.handler.rcpt_replies[SENDER] = "550 5.1.1 Gone"
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1")
    await svc.start()
    try:
        qid = enqueue(engine, [SENDER], mail_from="")
        svc.wake()
        await wait_for(_done(engine, qid))
    finally:
        await svc.stop()
    assert entries(engine, qid)[SENDER].status == "bounced"
    assert [b.queue_id for b in bounces(engine)] == [qid]  # no bounce of the bounce


async def test_failing_stage_parks_and_retry_replays(engine, sink, tmp_path):
    def broken(content: bytes, facts) -> bytes:
        raise RuntimeError("signing key missing")

    config = plain_config(tmp_path, default=sink.hop)
    svc = DeliveryService(config, engine, "n1", stages=[("transform", broken)])
    await svc.start()
    try:
        qid = enqueue(engine, ["a@example.org"])
        svc.wake()
        await wait_for(lambda: message(engine, qid).status == "parked", what="parked")
    finally:
        await svc.stop()
    m = message(engine, qid)
    assert m.parked_stage == "transform" and "signing key missing" in (m.parked_error or "")
    assert m.processed_at is None and sink.handler.received == []
    e = entries(engine, qid)["a@example.org"]
    assert e.status == "queued" and e.attempts == 0 and e.locked_by is None

    with session_factory(engine).begin() as s:
        assert admin.retry(s, qid) == 1
    svc = DeliveryService(config, engine, "n2")  # the stage is fixed
    await svc.start()
    try:
        await wait_for(_done(engine, qid), what="delivered after retry")
    finally:
        await svc.stop()
    assert sink.copies_for("a@example.org") == 1
    assert message(engine, qid).parked_stage is None


async def test_two_nodes_never_deliver_an_entry_twice(engine, sink, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mailgw.delivery")
    config = plain_config(tmp_path, default=sink.hop, concurrency=3)
    qids = [enqueue(engine, [f"u{i}@example.org", f"v{i}@example.net"]) for i in range(30)]
    nodes = [DeliveryService(config, engine, f"node{n}", poll_interval=0.05) for n in (1, 2)]
    for n in nodes:
        await n.start()
    try:
        await wait_for(lambda: all(message(engine, q).status == "done" for q in qids),
                       timeout=30, what="all 30 messages done")
    finally:
        for n in nodes:
            await n.stop()
    for i in range(30):
        assert sink.copies_for(f"u{i}@example.org") == 1
        assert sink.copies_for(f"v{i}@example.net") == 1
    assert {e.attempts for q in qids for e in entries(engine, q).values()} == {1}
    # Both nodes took part (the shared store spreads the work).
    nodes_seen = {r.mailgw["node"] for r in caplog.records if hasattr(r, "mailgw")}
    assert nodes_seen == {"node1", "node2"}


async def test_stop_gives_leases_back(engine, tmp_path):
    # A sink that accepts the connection but never greets: the transfer hangs until stop().
    async def silent(reader, writer):
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = plain_config(tmp_path, default=f"smtp:[127.0.0.1]:{port}", connect_timeout=20.0)
    svc = DeliveryService(config, engine, "n1")
    await svc.start()
    try:
        qid = enqueue(engine, ["a@example.org"])
        svc.wake()
        await wait_for(lambda: entries(engine, qid)["a@example.org"].locked_by == "n1",
                       what="leased")
        await svc.stop(timeout=0.2)
    finally:
        server.close()
    e = entries(engine, qid)["a@example.org"]
    assert e.status == "queued" and e.locked_by is None and e.locked_until is None


def _tls_context():
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("sink.test", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


async def test_starttls_when_offered_and_required(engine, tmp_path):
    tls_sink = await Sink(tls_context=_tls_context()).start()
    plain_sink = await Sink().start()
    config = plain_config(tmp_path, require_tls=True, default=tls_sink.hop,
                         routes={"plain.example": plain_sink.hop})
    svc = DeliveryService(config, engine, "n1", poll_interval=0.1)
    await svc.start()
    try:
        qid = enqueue(engine, ["a@tls.example", "b@plain.example"])
        svc.wake()
        await wait_for(lambda: entries(engine, qid)["a@tls.example"].status == "delivered")
        await wait_for(lambda: entries(engine, qid)["b@plain.example"].attempts >= 1)
    finally:
        await svc.stop()
        await tls_sink.stop()
        await plain_sink.stop()
    assert tls_sink.handler.tls_seen == [True]
    # No STARTTLS at a next hop while TLS is required: deferred, never sent in clear.
    b = entries(engine, qid)["b@plain.example"]
    assert b.status == "deferred" and "does not offer STARTTLS" in b.last_reply
    assert plain_sink.handler.received == []


async def test_entries_of_a_crashed_node_are_replayed_after_its_lease(engine, sink, tmp_path):
    from mailgw.queue import store

    qid = enqueue(engine, ["a@example.org"])
    with session_factory(engine).begin() as s:  # a node claims, then dies without a word
        assert len(store.claim_due(s, "crashed", 10, lease_seconds=3.0)) == 1
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n2",
                          poll_interval=0.1)
    await svc.start()
    try:
        await asyncio.sleep(0.5)
        assert sink.handler.received == []  # still leased to the dead node
        await wait_for(_done(engine, qid), what="replayed after the lease ran out")
    finally:
        await svc.stop()
    assert sink.copies_for("a@example.org") == 1


async def test_one_connection_serves_consecutive_messages(engine, sink, tmp_path):
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop, concurrency=1), engine, "n1",
                          poll_interval=0.1)
    await svc.start()
    try:
        first = [enqueue(engine, [f"r{i}@example.org"]) for i in range(5)]
        svc.wake()
        await wait_for(lambda: all(message(engine, q).status == "done" for q in first))
        assert len(sink.connections) == 1  # cached and reused, with RSET in between
        # The next hop drops idle connections: the next message opens a new one.
        sink.drop_connections()
        await asyncio.sleep(0.1)
        later = enqueue(engine, ["late@example.org"])
        svc.wake()
        await wait_for(_done(engine, later))
    finally:
        await svc.stop()
    assert len(sink.connections) == 2
    assert entries(engine, later)["late@example.org"].attempts == 1
    assert [sink.copies_for(f"r{i}@example.org") for i in range(5)] == [1] * 5


async def test_a_long_transfer_keeps_its_lease(engine, sink, tmp_path):
    # The transfer outlasts the lease several times over; the heartbeat renews it, so the other
    # node, polling all the while, never takes the entry.
    # Margins for a loaded CI machine: renewals every 0.5 s may run ~1 s late.
    sink.handler.data_delay = 5.0
    config = plain_config(tmp_path, default=sink.hop)
    nodes = [DeliveryService(config, engine, f"node{n}", poll_interval=0.05, lease_seconds=1.5)
             for n in (1, 2)]
    for n in nodes:
        await n.start()
    try:
        qid = enqueue(engine, ["slow@example.org"])
        for n in nodes:
            n.wake()
        await wait_for(_done(engine, qid), what="delivered")
    finally:
        for n in nodes:
            await n.stop()
    assert sink.copies_for("slow@example.org") == 1
    assert entries(engine, qid)["slow@example.org"].attempts == 1


async def test_post_stages_run_once_for_a_message_split_over_next_hops(engine, sink, tmp_path):
    # Two recipient domains, two next hops: two groups, one run of the post-acceptance stages
    # (a stage such as DKIM signing must not run per group and send different bytes).
    runs: list[str] = []

    def counting_stage(content: bytes, facts: object) -> bytes:
        runs.append("transform")
        return b"X-Stage-Run: 1\r\n" + content

    maildir = tmp_path / "md"
    config = plain_config(tmp_path, default=sink.hop, routes={"b.org": f"maildir:{maildir}"})
    svc = DeliveryService(config, engine, "n1", stages=[("transform", counting_stage)])
    qid = enqueue(engine, ["x@a.org", "y@b.org"])
    await svc.start()
    try:
        await wait_for(_done(engine, qid), what="delivered over both hops")
    finally:
        await svc.stop()
    assert runs == ["transform"]
    assert sink.copies_for("x@a.org") == 1
    assert list((maildir / "y@b.org" / "new").iterdir())
