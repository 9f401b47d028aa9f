"""MX routing against a real DNS server on 127.0.0.1: preference order with fallback to the next
host, implicit MX (A record), null MX and NXDOMAIN (permanent), server failure and timeout
(temporary), and the worker delivering by `mx`."""

from __future__ import annotations

import pytest

from mailgw.config import load
from mailgw.delivery import mx
from mailgw.delivery.worker import DeliveryService
from tests.delivery.conftest import enqueue, entries, message, plain_config, wait_for
from tests.delivery.dnsserver import ZoneServer

ZONE = {
    # mx1 is preferred but nothing listens on 127.0.0.3: the sink (mx2, 127.0.0.1) takes it.
    ("ok.test", "MX"): ["20 mx2.ok.test.", "10 mx1.ok.test."],
    ("mx1.ok.test", "A"): ["127.0.0.3"],
    ("mx2.ok.test", "A"): ["127.0.0.1"],
    ("implicit.test", "A"): ["127.0.0.1"],
    ("nullmx.test", "MX"): ["0 ."],
    ("down.test", "MX"): ["10 mx1.ok.test."],
}


@pytest.fixture
async def dns_server():
    server = await ZoneServer(ZONE, servfail={"broken.test"}, silent={"slow.test"}).start()
    yield server
    server.stop()


def _resolver(server: ZoneServer, timeout: float = 2.0) -> mx.MxResolver:
    return mx.MxResolver(timeout=timeout, nameservers=["127.0.0.1"], port=server.port)


async def test_mail_hosts_by_preference_and_implicit_mx(dns_server):
    r = _resolver(dns_server)
    assert await r.mail_hosts("ok.test") == ["mx1.ok.test", "mx2.ok.test"]
    assert await r.mail_hosts("implicit.test") == ["implicit.test"]
    assert await r.addresses("mx2.ok.test") == ["127.0.0.1"]


async def test_send_skips_an_unreachable_host(dns_server, sink):
    results, remote = await mx.send(_resolver(dns_server), "ok.test", "a@phutho.gov.vn",
                                    ["x@ok.test"], b"Subject: t\r\n\r\nb\r\n", port=sink.port,
                                    helo="gw.test", connect_timeout=2)
    assert results["x@ok.test"].kind == "delivered"
    assert remote == f"mx2.ok.test[127.0.0.1]:{sink.port}"
    assert sink.copies_for("x@ok.test") == 1


@pytest.mark.parametrize(("domain", "kind", "code"), [
    ("nullmx.test", "permanent", "556 5.1.10"),
    ("nowhere.test", "permanent", "550 5.1.2"),
    ("broken.test", "temporary", "451 4.4.3"),
    ("slow.test", "temporary", "451 4.4.3"),
    ("down.test", "temporary", "451 4.4.1"),
])
async def test_dns_outcomes(dns_server, sink, domain, kind, code):
    results, _ = await mx.send(_resolver(dns_server, timeout=0.5), domain, "a@phutho.gov.vn",
                               [f"x@{domain}"], b"x\r\n", port=sink.port, helo="gw.test",
                               connect_timeout=1)
    r = results[f"x@{domain}"]
    assert (r.kind, r.reply[:len(code)]) == (kind, code), r.reply


async def test_worker_routes_by_mx(engine, dns_server, sink, tmp_path):
    config = plain_config(tmp_path, default="mx")
    svc = DeliveryService(config, engine, "n1", resolver=_resolver(dns_server, timeout=5.0),
                          mx_port=sink.port)
    await svc.start()
    try:
        qid = enqueue(engine, ["a@ok.test", "b@implicit.test", "c@nullmx.test"])
        svc.wake()
        await wait_for(lambda: message(engine, qid).status == "done", timeout=30,
                       what=lambda: {r: (e.status, e.attempts, e.locked_by, e.last_reply)
                                     for r, e in entries(engine, qid).items()})
    finally:
        await svc.stop()
    es = entries(engine, qid)
    state = {r: (e.status, e.attempts, e.last_reply) for r, e in es.items()}
    assert es["a@ok.test"].status == "delivered", state
    assert es["b@implicit.test"].status == "delivered", state
    assert es["c@nullmx.test"].status == "bounced" and es["c@nullmx.test"].bounce_sent
    # Different domains are different transactions (each has its own MX hosts).
    assert sorted(r.rcpt_tos[0] for r in sink.handler.received) == ["a@ok.test",
                                                                     "b@implicit.test"]


async def test_worker_asks_the_configured_nameservers(engine, dns_server, sink, tmp_path):
    # No resolver handed in: the worker builds its own from gateway.nameservers, which the
    # config documents for MX delivery (it used to ask resolv.conf's servers instead).
    plain_config(tmp_path, default="mx")
    config = load(tmp_path / "mailgw.toml",
                  environ={"MAILGW_GATEWAY__NAMESERVERS": f'["127.0.0.1:{dns_server.port}"]'})
    svc = DeliveryService(config, engine, "n1", mx_port=sink.port)
    await svc.start()
    try:
        qid = enqueue(engine, ["a@ok.test"])
        svc.wake()
        await wait_for(lambda: message(engine, qid).status == "done", timeout=30,
                       what=lambda: {r: (e.status, e.last_reply)
                                     for r, e in entries(engine, qid).items()})
    finally:
        await svc.stop()
    assert entries(engine, qid)["a@ok.test"].status == "delivered"
    assert sink.copies_for("a@ok.test") == 1
