"""CPU work on big messages in a worker process, away from the gateway's event loop.

Classification before acceptance, and DKIM signing after it (mailgw.dkim.service).

A thread does not take CPU work off the event loop in CPython: a thread extracting a 20 MB
message holds the GIL and the loop waits for it at every step, so small messages arriving
beside a few big ones stalled for seconds. Large messages (mailgw.pipeline.mail.is_large) are
classified by a worker process instead (its own interpreter, started with "spawn": the
gateway process has threads and must not be forked). The pipeline thread that asked waits
for the answer without holding the GIL. Smaller messages stay where they were: pickling and
a process hop cost more than their classification.

The bytes travel through a scratch file, not the pool's pipe: the pipe meant pickling 20 MB
(copies into a growing buffer) and hundreds of pipe writes in the pool's feeder thread, with
the GIL held for each copy and taken back after each write. The event loop waited behind them;
that was most of what still stalled small messages beside big ones. Writing the file is one
system call without the GIL; the worker reads it in its own process. The file goes as soon as
the answer is back (files left by a killed process are removed when the next one starts); a
full disk fails the message like any other store trouble (451).

A worker that dies (a crash in a parser) fails that message with an exception (the edge
answers 451, the client retries; a signing job parks the message) and the next big message gets
a new worker.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from mailgw.processes import is_running
from policies import Policy
from policies.classifiers.addresses import AddressClassifier
from policies.facts import Facts

T = TypeVar("T")

log = logging.getLogger("mailgw.pipeline")

# In the worker process: the policy and address classifier, set once by _start().
_policy: Policy | None = None
_addresses: AddressClassifier | None = None


def _start(policy: Policy, domains: tuple[str, ...],
           logs: tuple[int, logging.Formatter | None]) -> None:
    global _policy, _addresses
    # Log as the gateway process does (a spawned process starts with no logging set up): the
    # DKIM signer's notes about a large message are written here.
    level, formatter = logs
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler])
    _policy = policy
    _addresses = policy.address_classifier(domains)


def _classify(path: str, mail_from: str, rcpt_tos: list[str], direction: str,
              sender_unit: str) -> Facts:
    assert _policy is not None and _addresses is not None, "worker not started"
    raw = Path(path).read_bytes()
    return _policy.classify(raw, mail_from, rcpt_tos, addresses=_addresses,
                            direction=direction, sender_unit=sender_unit, only_needed=True)


class ContentProcesses:
    """A small pool of worker processes for work on big messages, started on first use."""

    def __init__(self, policy: Policy, domains: Sequence[str], scratch: Path,
                 workers: int = 1) -> None:
        """`scratch`: a directory for the messages on their way to a worker."""
        self._args = (policy, tuple(domains), _log_setup())
        self._scratch = scratch
        _remove_orphans(scratch)
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def classify(self, raw: bytes, mail_from: str, rcpt_tos: Sequence[str], direction: str,
                 sender_unit: str) -> Facts:
        """The facts, computed in a worker process (called from a pipeline thread)."""
        return self.compute(_classify, raw, mail_from, list(rcpt_tos), direction,
                            sender_unit)

    def compute(self, fn: Callable[..., T], data: bytes, *args: Any) -> T:
        """`fn(path, *args)` in a worker process, `path` naming a scratch file that holds
        `data` (called from a thread: it waits for the answer). `fn` and `args` must pickle."""
        pool = self._get()
        self._scratch.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"job-{os.getpid()}-", dir=self._scratch)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return pool.submit(fn, path, *args).result()
        except BrokenProcessPool:
            log.error("a worker process for big messages died; the next one starts anew")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start, initargs=self._args)
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _log_setup() -> tuple[int, logging.Formatter | None]:
    """This process's log level and the formatter of its first handler, for the workers."""
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None
    try:
        pickle.dumps(formatter)
    except Exception:  # e.g. one that holds a terminal (test runners): the default format
        formatter = None
    return root.getEffectiveLevel(), formatter


def _remove_orphans(scratch: Path) -> None:
    """Remove the scratch files of gateway processes that no longer run (killed meanwhile);
    the files of running ones (other gateway processes on this data_dir) stay."""
    for path in scratch.glob("job-*-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not is_running(int(pid)):
            with contextlib.suppress(OSError):
                path.unlink()

