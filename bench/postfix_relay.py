"""A throw-away Postfix instance that relays to the benchmark's sink (`load.py --postfix`).

Issue 2's target compares mailgw with "Postfix relaying the same load to a sink". This runs that
comparison on the machine of the run instead of quoting another machine's figure: Debian's
Postfix with its shipped defaults, except what a second instance on loopback needs (its own
config, queue and data directories in a temporary folder, one smtpd on 127.0.0.1:PORT, relay
permitted from 127.0.0.0/8, everything to `[127.0.0.1]:SINK`, no chroot, its log in a file)
and mailgw's message size limit (35 MB; Postfix's default of 10 MB would refuse the stall
benchmark's large messages).
Postfix writes each queue file with fsync before its 250, as mailgw commits before its own.

`postfix start` needs root (its master process binds and then drops to the postfix user).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from load import CLK_TCK, HOST, BenchError, free_port, process_tree, tree_cpu

POSTFIX = "/usr/sbin/postfix"
SHIPPED = Path("/etc/postfix")


def available() -> str | None:
    """Why Postfix cannot run here, or None."""
    if not Path(POSTFIX).exists() or not (SHIPPED / "master.cf").exists():
        return "Postfix is not installed (Debian: `apt-get install postfix`)"
    if os.geteuid() != 0:
        return "`postfix start` needs root"
    return None


def _master_cf(port: int) -> str:
    """Debian's master.cf with the smtp listener moved to 127.0.0.1:port and no chroot (the
    temporary queue directory has none of the files a chroot needs)."""
    out = []
    for line in (SHIPPED / "master.cf").read_text().splitlines():
        fields = line.split()
        if line and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"{HOST}:{port}"
            fields[4] = "n"
            line = " ".join(fields)
        out.append(line)
    return "\n".join(out) + "\n"


class PostfixRelay:
    """Postfix on 127.0.0.1:port relaying everything to the sink on `sink_port`."""

    def __init__(self, sink_port: int, tls: bool = False) -> None:
        # Its own directory: Postfix's processes run as the postfix user and must reach it
        # (the benchmark's temporary directory is private to root).
        self.dir = Path(tempfile.mkdtemp(prefix="mailgw-bench-postfix-"))
        self.dir.chmod(0o755)
        self.etc = self.dir / "etc"
        self.port = free_port()
        self.sink_port = sink_port
        self.tls = tls
        self.started = False

    def start(self, timeout: float = 30) -> PostfixRelay:
        for sub in ("etc", "spool", "data"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir / "data", "postfix", "postfix")
        (self.etc / "master.cf").write_text(_master_cf(self.port))
        tls = "smtpd_tls_security_level = none"
        if self.tls:  # STARTTLS offered, as mailgw's submission port does
            cert, key = self.dir / "etc" / "cert.pem", self.dir / "etc" / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-subj", "/CN=bench-postfix.test", "-days", "1",
                            "-keyout", str(key), "-out", str(cert)],
                           capture_output=True, timeout=60, check=True)
            tls = (f"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\n"
                   f"smtpd_tls_key_file = {key}")
        (self.etc / "main.cf").write_text(f"""\
# Written by bench/postfix_relay.py for one benchmark run.
compatibility_level = 3.6
meta_directory = {SHIPPED}
queue_directory = {self.dir / 'spool'}
data_directory = {self.dir / 'data'}
maillog_file = {self.dir / 'maillog'}
maillog_file_prefixes = {self.dir}
inet_interfaces = {HOST}
inet_protocols = ipv4
myhostname = bench-postfix.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [{HOST}]:{self.sink_port}
alias_maps =
alias_database =
local_recipient_maps =
smtp_tls_security_level = none
{tls}
# mailgw's default submission.max_message_size (Postfix's own default is 10 MB)
message_size_limit = {35 * 1024 * 1024}
""")
        r = subprocess.run([POSTFIX, "-c", str(self.etc), "start"], capture_output=True,
                           text=True, timeout=60, check=False)
        self.started = True
        if r.returncode != 0:
            raise BenchError(f"postfix start failed ({r.returncode}):\n{self.log_tail()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                return self
            time.sleep(0.05)
        raise BenchError(f"Postfix did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    def master_pid(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int((self.dir / "spool" / "pid" / "master.pid").read_text().split()[0])
        return 0

    def pids(self) -> list[int]:
        master = self.master_pid()
        return process_tree(master) if master else []

    def cpu_seconds(self) -> float:
        """CPU of the live processes plus what the master's exited children used (smtpd ends
        after 100 sessions, so most of the work is done by processes that are gone)."""
        master = self.master_pid()
        if not master:
            return 0.0
        live = tree_cpu(process_tree(master))
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{master}/stat").read_text().rsplit(")", 1)[1].split()
            live += (int(stat[13]) + int(stat[14])) / CLK_TCK  # cutime + cstime
        return live

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = (self.dir / "maillog").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.started:
            self.started = False
            subprocess.run([POSTFIX, "-c", str(self.etc), "abort"], capture_output=True,
                           timeout=60, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
