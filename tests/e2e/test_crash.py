"""Crash test: `mailgw serve` is killed with SIGKILL while mail streams in; after a restart every
message that got a 250 reaches the next hop. Duplicates (at-least-once delivery) are counted and
reported, never a loss."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.e2e.harness import free_port, running_sink

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

SENDER = "motcua@phutho.gov.vn"
TOTAL = 200


def write_config(tmp: Path, port: int, sink_port: int) -> Path:
    cfg = tmp / "mailgw.toml"
    cfg.write_text(f"""
[gateway]
data_dir = "{tmp / 'var'}"
hostname = "gw.test.phutho.gov.vn"
processes = 2
min_free_disk_mb = 0
log_level = "WARNING"
[submission]
listen = ["127.0.0.1:{port}"]
listen_tls = []
trusted_hosts = [{{name = "crash-test", networks = ["127.0.0.1/32"], senders = ["{SENDER}"]}}]
[mx]
listen = []
[delivery]
default = "smtp:[127.0.0.1]:{sink_port}"
retry_initial = 0.2
retry_max = 1.0
""", encoding="utf-8")
    return cfg


def start(cfg: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(cfg), "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as c:
                c.noop()
            return proc
        except OSError:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else "died"
                raise AssertionError(err) from None
            time.sleep(0.1)
    raise AssertionError("gateway did not start")


def test_sigkill_while_streaming_loses_no_acknowledged_message(tmp_path) -> None:
    port = free_port()
    with running_sink() as (sink, sink_port):
        cfg = write_config(tmp_path, port, sink_port)
        proc = start(cfg, port)
        acked: set[int] = set()
        lock = threading.Lock()
        next_seq = iter(range(TOTAL))
        seq_lock = threading.Lock()

        def client() -> None:
            while True:
                with seq_lock:
                    seq = next(next_seq, None)
                if seq is None:
                    return
                msg = EmailMessage()
                msg["From"] = SENDER
                msg["To"] = "congdan@example.org"
                msg["Subject"] = f"seq {seq}"
                msg["X-Test-Seq"] = str(seq)
                msg.set_content("Kết quả giải quyết hồ sơ.\n" * 50)
                # Like a real client: no 250, no hand-off; keep the message and try again.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                            c.send_message(msg, from_addr=SENDER,
                                           to_addrs=["congdan@example.org"])
                        with lock:
                            acked.add(seq)
                        break
                    except (OSError, smtplib.SMTPException):
                        time.sleep(0.1)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        while True:  # kill it in mid-stream
            with lock:
                if len(acked) >= 60:
                    break
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with lock:
            acked_at_kill = len(acked)
        time.sleep(1)  # the clients meet a dead gateway and retry
        proc = start(cfg, port)
        try:
            for t in threads:
                t.join(90)
            with lock:
                acked_total = set(acked)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with sink.lock:
                    seen = [int(_seq(raw)) for _, _, raw in sink.messages]
                if acked_total <= set(seen):
                    break
                time.sleep(0.2)
            missing = acked_total - set(seen)
            duplicates = len(seen) - len(set(seen))
            print(f"\ncrash test: {acked_at_kill} acknowledged before SIGKILL, {len(acked_total)} "
                  f"of {TOTAL} in all; delivered {len(set(seen))} distinct, "
                  f"{duplicates} duplicate deliveries")
            assert len(acked_total) == TOTAL, "the clients' retries after the restart failed"
            assert not missing, f"acknowledged but never delivered: {sorted(missing)}"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)


def _seq(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.startswith(b"X-Test-Seq: "):
            return line.split(b": ", 1)[1].decode()
    raise AssertionError("no X-Test-Seq header")
