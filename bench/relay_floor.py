"""What the chosen libraries can relay at best: aiosmtpd in, aiosmtplib out, nothing else.

Prints figures, asserts nothing. A reference for bench/load.py's ratio: the same smtp-source load
(one message per connection, 20 sessions, 10 KB) against

1. a bare aiosmtpd server that discards (load.py's baseline), and
2. a bare relay: `--processes` processes sharing one listening socket, each an aiosmtpd server
   whose DATA hook forwards the message over a cached aiosmtplib session to Postfix's smtp-sink
   and answers 250 after the sink's 250. No store, no policy, no signing, no durability.

The relay's ratio is a ceiling for any gateway built on these two libraries on this machine:
mailgw does all of the relay's work plus parsing, policy, durable storage and signing.

    python bench/relay_floor.py [--messages 5000] [--processes 2] [--loop uvloop|asyncio]

Needs Postfix's smtp-source and smtp-sink (Debian: postfix). Binds 127.0.0.1 only; every
process it starts is stopped at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import multiprocessing as mp
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

_spec = importlib.util.spec_from_file_location("bench_load", Path(__file__).with_name("load.py"))
assert _spec is not None and _spec.loader is not None
load = importlib.util.module_from_spec(_spec)
sys.modules["bench_load"] = load
_spec.loader.exec_module(load)


class _Forward:
    """aiosmtpd handler: forward over this process's pool of aiosmtplib sessions."""

    def __init__(self, sink_port: int) -> None:
        self.sink_port = sink_port
        self.idle: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import aiosmtplib

        client = self.idle.pop() if self.idle else None
        if client is None:
            client = aiosmtplib.SMTP(hostname=load.HOST, port=self.sink_port,
                                     local_hostname="relay.test", start_tls=False)
            await client.connect()
        try:
            await client.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.content)
        except Exception as exc:
            client.close()
            return f"451 4.3.0 relay failed: {exc}"
        self.idle.append(client)
        return "250 2.0.0 Ok: relayed"


def _serve_relay(sock: socket.socket, sink_port: int, loop_kind: str) -> None:
    from aiosmtpd.smtp import SMTP

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        handler = _Forward(sink_port)
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="relay.test", decode_data=False,
                         enable_SMTPUTF8=True), sock=sock)
        await stop.wait()
        server.close()

    from mailgw.loops import new_event_loop

    with contextlib.suppress(KeyboardInterrupt), \
            asyncio.Runner(loop_factory=lambda: new_event_loop(loop_kind)) as runner:
        runner.run(main())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", "-n", type=int, default=5000)
    p.add_argument("--processes", "-p", type=int, default=2)
    p.add_argument("--concurrency", "-c", type=int, default=20)
    p.add_argument("--size", "-s", type=int, default=10240)
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                   help="the relay's event loop (the gateway's default is uvloop)")
    args = p.parse_args()
    args.timeout = 60 + args.messages / 10
    source, sink_bin = load.smtp_source_path(), load.smtp_sink_path()
    if source is None or sink_bin is None:
        print("bench: needs Postfix's smtp-source and smtp-sink (apt-get install postfix)",
              file=sys.stderr)
        return 1
    servers: list[Any] = []
    relays: list[mp.process.BaseProcess] = []
    try:
        bare = load.CountingServer("bare aiosmtpd server").start()
        servers.append(bare)
        b_load, b_cpu, _ = load.run_side("bare aiosmtpd", args, bare.port, bare, [bare.pid],
                                         b"", tls=False, login=False,
                                         sender=load.TRUSTED_SENDER, source=source)
        bare.stop()
        sink = load.SmtpSinkCounter(sink_bin).start()
        servers.append(sink)
        sock = socket.socket()
        sock.bind((load.HOST, 0))
        sock.listen(512)
        ctx = mp.get_context("fork")  # the children inherit the listening socket
        for _ in range(args.processes):
            proc = ctx.Process(target=_serve_relay, args=(sock, sink.port, args.loop),
                               daemon=True)
            proc.start()
            relays.append(proc)
        port = sock.getsockname()[1]
        r_load, r_cpu, done = load.run_side("bare relay", args, port, sink,
                                            [int(r.pid or 0) for r in relays], b"",
                                            tls=False, login=False,
                                            sender=load.TRUSTED_SENDER, source=source)
        bare_rate = b_load.accepted / b_load.elapsed
        relay_rate = r_load.accepted / (done - r_load.started)
        print(f"\nrelay floor: {args.messages} messages of {args.size} bytes, "
              f"{args.concurrency} sessions (smtp-source), {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"bare aiosmtpd (discards):        {bare_rate:7.1f} msgs/s, "
              f"{1000 * b_cpu / b_load.accepted:.2f} ms CPU per message")
        print(f"bare relay ({args.processes} processes, {args.loop}, no store): "
              f"{relay_rate:7.1f} msgs/s "
              f"delivered, {1000 * r_cpu / r_load.accepted:.2f} ms CPU per message")
        print(f"ratio relay / bare: {relay_rate / bare_rate:.3f} (the ceiling for a gateway "
              "on aiosmtpd + aiosmtplib here)")
    except load.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in relays:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for server in servers:
            server.stop()
        time.sleep(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
