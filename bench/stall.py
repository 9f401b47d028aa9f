"""Do large messages stall other sessions? Small-message latency alone, then beside big ones.

    python bench/stall.py [--large 4] [--large-mb 20] [--messages 200] [--processes 2]
    python bench/stall.py --postfix    # the same phases, plain SMTP, mailgw then Postfix

One gateway (`mailgw serve`, SQLite, delivery to a discarding sink), driven over STARTTLS + AUTH
by the python driver of bench/load.py. Phase 1 measures the acceptance latency (end of DATA to
250) of small 10 KB messages alone; phase 2 measures the same load while `--large` clients keep
sending `--large-mb` messages (a PDF and incompressible data, as scanned attachments are) one
after the other. It prints p50/p99/max of both phases and the p99 ratio. A figure, not a test: a
busy machine inflates every number.

`--postfix` (root, Postfix installed) runs both phases against mailgw and then against a
throw-away Postfix relaying to the same sink (bench/postfix_relay.py), every client in plain SMTP
from a trusted host with STARTTLS and without AUTH (Postfix has no AUTH here; `--plain`: no
TLS either): how much the same large messages slow small ones down in a mature MTA on the same
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load as lb  # bench/load.py: gateway, sink and driver


def big_message(megabytes: int, sender: str) -> bytes:
    """A message of about `megabytes` MB: text, a small PDF, then base64 of random bytes."""
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = lb.RCPT
    msg["Subject"] = "Ho so quet (anh chup)"
    msg.set_content("Kính gửi anh chị, xin gửi hồ sơ quét.\n")
    msg.add_attachment(lb.make_pdf(2000), maintype="application", subtype="pdf",
                       filename="to-trinh.pdf")
    msg.add_attachment(os.urandom(megabytes * 1024 * 1024 * 3 // 4), maintype="image",
                       subtype="jpeg", filename="ho-so-quet.jpg")
    return msg.as_bytes(policy=SMTP)


async def _send_big(port: int, body: bytes, stop: Any, sent: Any, tls: bool, login: bool,
                    sender: str) -> None:
    import aiosmtplib

    while not stop.is_set():
        smtp = aiosmtplib.SMTP(hostname=lb.HOST, port=port, timeout=300, start_tls=tls,
                               tls_context=lb.client_tls_context() if tls else None,
                               validate_certs=False)
        try:
            await smtp.connect()
            if login:
                await smtp.login(lb.USER, lb.PASSWORD)
            t = time.perf_counter()
            await smtp.sendmail(sender, [lb.RCPT], body)
            sent.append(time.perf_counter() - t)
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError) as exc:
            lb.say(f"[large] {type(exc).__name__}: {str(exc)[:80]}")
            smtp.close()
            await asyncio.sleep(0.5)


def _big_senders(port: int, n: int, body: bytes, stop: Any, sent: Any, tls: bool, login: bool,
                 sender: str) -> Any:
    """The large-message clients, in a process of their own: in the measuring process their
    work (aiosmtplib quotes and TLS-encrypts 22 MB while holding the GIL) stalled the small
    messages' client and showed up as gateway latency."""
    proc = multiprocessing.get_context("spawn").Process(
        target=_big_senders_main, args=(port, n, body, stop, sent, tls, login, sender),
        daemon=True)
    proc.start()
    return proc


def _big_senders_main(port: int, n: int, body: bytes, stop: Any, sent: Any, tls: bool,
                      login: bool, sender: str) -> None:
    async def main() -> None:
        await asyncio.gather(*(_send_big(port, body, stop, sent, tls, login, sender)
                               for _ in range(n)))

    asyncio.run(main())


def _pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))] * 1000


def _phases(name: str, args: argparse.Namespace, largs: argparse.Namespace, port: int,
            tls: bool, login: bool, sender: str, template: bytes, big: bytes
            ) -> tuple[Any, Any, list[float]]:
    lb.say(f"[{name}] phase 1: {args.messages} small messages alone")
    alone = lb.run_python_load(port, args.messages, largs, template, sender, tls, login, 600)
    manager = multiprocessing.get_context("spawn").Manager()
    stop, sent = manager.Event(), manager.list()
    lb.say(f"[{name}] phase 2: the same beside {args.large} clients sending "
           f"{len(big) / 1e6:.1f} MB messages")
    senders = _big_senders(port, args.large, big, stop, sent, tls, login, sender)
    time.sleep(2)  # let the big transfers get going
    beside = lb.run_python_load(port, args.messages, largs, template, sender, tls, login, 600)
    stop.set()
    senders.join(600)
    done = list(sent)
    manager.shutdown()
    return alone, beside, done


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=200, help="small messages per phase")
    p.add_argument("--concurrency", type=int, default=5, help="small-message sessions")
    p.add_argument("--large", type=int, default=4, help="clients sending large messages")
    p.add_argument("--large-mb", type=int, default=20, help="size of each large message")
    p.add_argument("--processes", type=int, default=2, help="gateway.processes")
    p.add_argument("--postfix", action="store_true",
                   help="STARTTLS from a trusted host without AUTH, mailgw then Postfix (root)")
    p.add_argument("--no-dkim", action="store_true", help="the gateway without DKIM signing")
    p.add_argument("--plain", action="store_true",
                   help="with --postfix: plain SMTP, no STARTTLS")
    args = p.parse_args()
    if args.postfix:
        import postfix_relay

        why = postfix_relay.available()
        if why:
            p.error(f"--postfix: {why}")
    # STARTTLS + AUTH as a user; with --postfix from the trusted host without AUTH.
    tls, login = not args.plain, not args.postfix
    sender = lb.TRUSTED_SENDER if args.postfix else lb.USER
    how = ("STARTTLS" if tls else "plain SMTP") + (" + AUTH" if login else ", trusted host")
    # What bench/load.py's Gateway and driver read from their own options.
    largs = lb.parse_args(["--processes", str(args.processes), "--concurrency",
                           str(args.concurrency), "--per-session", "10"]
                          + (["--no-dkim"] if args.no_dkim else []))
    template = lb.build_message(10240, sender)
    big = big_message(args.large_mb, sender)
    # The next hop: Postfix's smtp-sink (C) when installed. An aiosmtpd sink reads each 22 MB
    # message line by line in Python, about a core on this load, and the CPU it took from
    # the gateway on a small machine showed up as gateway latency.
    sink_bin = lb.smtp_sink_path()
    sink = (lb.SmtpSinkCounter(sink_bin) if sink_bin else lb.CountingServer("sink")).start()
    results = []

    def measure(name: str, label: str, server: Any) -> None:
        """Both phases against `server` (started here, stopped whatever happens)."""
        try:
            server.start()
            results.append((label, _phases(name, args, largs, server.port, tls, login, sender,
                                           template, big)))
        finally:
            server.stop()

    try:
        with tempfile.TemporaryDirectory(prefix="mailgw-stall-") as tmp:
            gateway = lb.Gateway(Path(tmp), largs, sink.port)
            gateway.add_user()
            # Stopped inside the directory's block: a gateway still delivering read a
            # half-removed directory (missing DKIM keys, spool files).
            measure("mailgw", f"mailgw ({args.processes} processes, {how})", gateway)
        if args.postfix:
            measure("postfix", f"Postfix ({how})", postfix_relay.PostfixRelay(sink.port, tls=tls))
    finally:
        sink.stop()
    print(f"small-message acceptance latency, {args.concurrency} sessions, next hop "
          f"{sink.name}, load average {os.getloadavg()[0]:.2f}:")
    for name, (alone, beside, sent) in results:
        a, b = alone.latencies, beside.latencies
        print(f"{name}:")
        print(f"  alone:                    p50 {_pct(a, 0.5):7.1f} ms  p99 "
              f"{_pct(a, 0.99):7.1f} ms  max {max(a) * 1000:7.1f} ms"
              f"  ({alone.accepted} accepted, {alone.failed} failed)")
        print(f"  beside {args.large} x {len(big) / 1e6:.0f} MB senders: p50 {_pct(b, 0.5):7.1f} ms"
              f"  p99 {_pct(b, 0.99):7.1f} ms  max {max(b) * 1000:7.1f} ms"
              f"  ({beside.accepted} accepted, {beside.failed} failed)")
        if sent:
            print(f"  large messages accepted meanwhile: {len(sent)}, "
                  f"median {statistics.median(sent):.1f} s each")
        print(f"  p99 ratio beside / alone: {_pct(b, 0.99) / _pct(a, 0.99):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
