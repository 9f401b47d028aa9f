"""`mailgw serve`: binds the listening sockets, then runs one or more gateway processes.

Each process (a `Node`) runs its own event loop with the listeners, the store writer and the
delivery workers, all sharing the sockets bound once by the parent: the kernel spreads
connections over the processes, so CPU-heavy work in one never stalls sessions in another and
every core is used. The parent only supervises: it forwards SIGTERM/SIGINT and restarts a process
that died. Claims on queue entries are leases in the store, so several processes (and, on
PostgreSQL, several machines) never deliver the same entry at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, inspect

from mailgw import dkim
from mailgw.auth import make_authenticator
from mailgw.config import Config, parse_hostport
from mailgw.delivery.worker import DeliveryService
from mailgw.inbound import InboundChecker
from mailgw.loops import new_event_loop
from mailgw.pipeline import post
from mailgw.pipeline.runner import Pipeline, load_configured_policy
from mailgw.queue.recovery import local_node_id, release_dead_local_leases
from mailgw.smtp.mx import MXSMTP
from mailgw.smtp.submission import SubmissionContext, SubmissionSMTP
from mailgw.store import spool
from mailgw.store.db import StoreError, is_sqlite, make_engine, session_factory, upgrade
from mailgw.store.writer import StoreWriter
from mailgw.tls import server_ssl_context

log = logging.getLogger("mailgw.server")


@dataclass
class Listener:
    kind: str            # "submission" | "submission_tls" | "mx"
    sock: socket.socket

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listeners(config: Config) -> list[Listener]:
    """Bind every configured address (SystemExit-free: OSError names the address)."""
    out: list[Listener] = []
    wanted = [("submission", a) for a in config.submission.listen]
    wanted += [("submission_tls", a) for a in config.submission.listen_tls]
    wanted += [("mx", a) for a in config.mx.listen]
    for kind, address in wanted:
        host, port = parse_hostport(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            for listener in out:
                listener.sock.close()
            raise OSError(f"cannot listen on {address} ({kind}): {exc.strerror}") from None
        sock.listen(512)
        sock.setblocking(False)
        out.append(Listener(kind, sock))
    return out


def prepare_store(config: Config) -> Engine:
    """The engine; the embedded SQLite is upgraded automatically, PostgreSQL must be current."""
    engine = make_engine(config.store_url, config.store.sqlite_synchronous)
    if is_sqlite(config.store_url):
        upgrade(engine)
        return engine
    try:
        tables = set(inspect(engine).get_table_names())
    except Exception as exc:
        from mailgw.store.db import describe

        raise StoreError(f"cannot reach the database: {describe(exc)}") from None
    if "alembic_version" not in tables:
        raise StoreError("the database has no mailgw schema yet: run `mailgw db upgrade`")
    return engine


class Node:
    """One gateway process: listeners, store writer, pipeline and delivery workers."""

    def __init__(self, config: Config, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or make_engine(config.store_url, config.store.sqlite_synchronous)
        self.sessions = session_factory(self.engine)
        self.writer = StoreWriter(self.sessions)
        self.node_id = local_node_id()
        # SPF/DKIM/DMARC tables are built once per process, only if mail comes from outside.
        inbound = InboundChecker.from_config(config) if config.mx.listen else None
        self.pipeline = Pipeline(config, self.writer, on_commit=lambda: self.delivery.wake(),
                                 inbound=inbound)
        # Large messages are signed in the pipeline's worker processes, as they are classified.
        self.delivery = DeliveryService(
            config, self.engine, self.node_id, writer=self.writer,
            stages=post.default_stages(config, processes=self.pipeline.offload))
        # Fresh mail goes from the writer to this process's workers without a claim.
        self.writer.handoff = self.delivery
        self.servers: list[asyncio.base_events.Server] = []

    async def start(self, listeners: list[Listener]) -> None:
        loop = asyncio.get_running_loop()
        tls = server_ssl_context(self.config)
        dkim.prepare(self.config)
        ctx = SubmissionContext.build(self.config, self.pipeline,
                                      make_authenticator(self.config, self.sessions), tls)
        release_dead_local_leases(self.sessions)
        self.writer.start()
        factories: dict[str, Callable[[], asyncio.Protocol]] = {
            "submission": lambda: SubmissionSMTP(ctx, implicit_tls=False),
            "submission_tls": lambda: SubmissionSMTP(ctx, implicit_tls=True),
            # The MX listener shares the limits and the pipeline, not the trusted hosts.
            "mx": lambda: MXSMTP(ctx),
        }
        for listener in listeners:
            server = await loop.create_server(
                factories[listener.kind], sock=listener.sock,
                ssl=tls if listener.kind == "submission_tls" else None)
            self.servers.append(server)
        await self.delivery.start()

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        await self.delivery.stop()
        self.writer.stop()
        self.pipeline.close()
        self.engine.dispose()


async def _run_node(config: Config, listeners: list[Listener]) -> None:
    node = Node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await node.start(listeners)
    _tune_gc()
    await stop.wait()
    log.info("stopping (pid %d)", os.getpid())
    await node.stop()


# Allocations between two young-generation collections (CPython's default is 700). Each
# accepted message allocates thousands of objects (MIME parsing, SQLAlchemy rows), so the
# default ran a collection several times per message, and the cyclic garbage is small.
GC_YOUNG_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections on the hot path: the objects made at start (policy,
    compiled statements, modules) go to the permanent generation, which collections skip, and
    young collections run less often. Measured in bench/load.py: about 8 % less CPU per
    message. The full collection before it ran in serve(), before the fork: here, with the
    listeners open, it kept the loop from the first clients for about 100 ms."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 50)


def run_node(config: Config, listeners: list[Listener]) -> None:
    with asyncio.Runner(loop_factory=lambda: new_event_loop(config.gateway.event_loop)) as runner:
        runner.run(_run_node(config, listeners))


def serve(config: Config, processes: int | None = None) -> None:
    """Bind, then run `processes` gateway processes until SIGTERM/SIGINT."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # A bad policy file stops serve here (file:line), before anything listens; the processes
    # forked below inherit the policy read now.
    policy = load_configured_policy(config)
    # Its address tables (the look-alike skeletons take 0.1-0.3 s) are built once here and
    # inherited, not again by each gateway process as it starts (Enforcement.build).
    policy.address_classifier(config.gateway.domains)
    # The extraction stack (pypdf, lxml, py7zr...: about 70 ms of imports, which policies
    # loads at the first classification) is imported once here and inherited, not by each
    # gateway process on its event loop while its first message waits.
    import policies.extract  # noqa: F401
    engine = prepare_store(config)
    spool.sweep(engine)  # files a crash left behind (no process is running yet)
    engine.dispose()
    server_ssl_context(config)  # make the self-signed certificate once, before forking
    dkim.prepare(config)  # first keys, then a clear error for a missing one, before forking
    listeners = bind_listeners(config)
    n = processes or config.gateway.processes or os.cpu_count() or 1
    for listener in listeners:
        log.info("listening on %s (%s)", listener.address, listener.kind)
    log.info("store %s; delivery default %s; %d process(es)",
             engine.url.render_as_string(hide_password=True), config.delivery.default, n)
    gc.collect()  # once, before the fork: the processes freeze a clean heap (_tune_gc)
    if n == 1:
        run_node(config, listeners)
        return
    _supervise(config, listeners, n)


def _supervise(config: Config, listeners: list[Listener], n: int) -> None:
    children: dict[int, float] = {}
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                run_node(config, listeners)
            except BaseException:
                log.exception("gateway process %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(n):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        started = children.pop(pid, None)
        if stopping or started is None:
            continue
        log.error("gateway process %d exited (status %d); restarting", pid, status)
        if time.monotonic() - started < 1.0:
            time.sleep(1.0)  # do not spin if a process dies at once
        spawn()
    sys.stdout.flush()
