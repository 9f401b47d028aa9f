"""DKIM test kit: keys made in tmp_path, sample messages, configs, a loopback DNS server and two
verifiers: dkimpy and Perl's Mail::DKIM (independent; it asks the DNS server the test started).

Debian packages for the independent verifiers: libmail-dkim-perl (Mail::DKIM, RSA over real DNS)
and opendkim (`opendkim -t` test mode with TestPublicKeys, RSA and Ed25519: Mail::DKIM in Debian 12
has no Ed25519). Where they are absent the tests that need them skip with the reason.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import dkim
import pytest

from mailgw.config import Config, load
from mailgw.dkim import keys
from tests.delivery.dnsserver import ZoneServer

DOMAIN = "phutho.gov.vn"
SENDER = f"chuyenvien@{DOMAIN}"


def _plain() -> bytes:
    return (f"From: Chuyen Vien <{SENDER}>\r\n"
            "To: ban@example.com\r\n"
            "Subject: Bao cao tuan\r\n  (ban nhap)\r\n"
            "Date: Thu, 26 Nov 2026 09:00:00 +0700\r\n"
            "Message-ID: <plain.1@phutho.gov.vn>\r\n"
            "\r\n"
            "Kinh gui anh,   \r\n\r\nBao cao dinh kem.\r\n\r\n\r\n").encode("ascii")


def _multipart() -> bytes:
    m = EmailMessage()
    m["From"] = f"Văn phòng <{SENDER}>"
    m["To"] = "a@example.com, b@example.org"
    m["Cc"] = "c@phutho.gov.vn"
    m["Subject"] = "Công văn số 12/UBND"
    m["Date"] = "Thu, 26 Nov 2026 09:00:00 +0700"
    m["Message-ID"] = "<multi.1@phutho.gov.vn>"
    m.set_content("Kính gửi các đơn vị,\nXem tệp đính kèm.\n")
    m.add_alternative("<p>Kính gửi các đơn vị</p>", subtype="html")
    m.add_attachment(bytes(range(256)) * 20, maintype="application", subtype="pdf",
                     filename="cv-12.pdf")
    return m.as_bytes(policy=SMTP)


def _eightbit() -> bytes:
    body = "Kính gửi đồng chí Chủ tịch,\r\nĐề nghị xem xét.\r\n".encode()
    return (f"From: {SENDER}\r\nTo: b@example.com\r\nSubject: 8bit\r\n"
            "Date: Thu, 26 Nov 2026 09:00:00 +0700\r\nMessage-ID: <8bit.1@phutho.gov.vn>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body


def _smtputf8() -> bytes:
    # RFC 6532: raw UTF-8 in header fields, including an address local part.
    return ("From: Nguyễn Văn Ánh <ánh.nguyễn@phutho.gov.vn>\r\n"
            "To: Trần Thị Bình <bình@ví-dụ.vn>\r\n"
            "Subject: Giấy mời họp — phiên bản cuối\r\n"
            "Date: Thu, 26 Nov 2026 09:00:00 +0700\r\n"
            "Message-ID: <utf8.1@phutho.gov.vn>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            "Trân trọng kính mời.\r\n").encode()


MESSAGES: dict[str, Callable[[], bytes]] = {
    "plain": _plain, "multipart": _multipart, "8bit": _eightbit, "smtputf8": _smtputf8,
}


@pytest.fixture(scope="session")
def rsa_key() -> keys.PrivateKey:
    return keys.generate("rsa")


@pytest.fixture(scope="session")
def ed_key() -> keys.PrivateKey:
    return keys.generate("ed25519")


def algorithm_of(key: keys.PrivateKey) -> str:
    return "rsa" if "RSA" in type(key).__name__ else "ed25519"


def txt_rdata(record: str) -> str:
    """A TXT record as zone-file rdata: quoted strings of at most 255 bytes."""
    return " ".join(f'"{p}"' for p in keys.split_255(record))


def dkimpy_verify(message: bytes, published: dict[str, str]) -> list[bool | None]:
    """dkimpy's verdict for each DKIM-Signature (top first); `published`: name -> record.

    None for an Ed25519 signature when PyNaCl (which dkimpy needs for it) is not installed.
    """
    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        n = name.decode() if isinstance(name, bytes) else name
        return published.get(n.rstrip("."), "").encode()

    d = dkim.DKIM(message)
    count = sum(1 for n, _ in d.headers if n.lower() == b"dkim-signature")
    out: list[bool | None] = []
    for i in range(count):
        try:
            out.append(d.verify(idx=i, dnsfunc=dnsfunc))
        except dkim.NaClNotFoundError:
            out.append(None)
    return out


def needs_nacl() -> None:
    try:
        import nacl  # noqa: F401
    except ImportError:
        pytest.skip("dkimpy verifies Ed25519 only with PyNaCl, which is not installed")


PERL_VERIFIER = r"""
use strict;
use warnings;
use Net::DNS::Resolver;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;

my ($port, $file) = @ARGV;
# Ask only the test's DNS server on 127.0.0.1.
my $res = Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port,
                                  recurse => 1, retry => 2, udp_timeout => 5, tcp_timeout => 5);
Mail::DKIM::DNS::resolver($res);
my $dkim = Mail::DKIM::Verifier->new();
open(my $fh, '<:raw', $file) or die "cannot open $file: $!";
while (my $line = <$fh>) {
    $line =~ s/\r?\n\z/\r\n/;
    $dkim->PRINT($line);
}
close($fh);
$dkim->CLOSE();
foreach my $sig ($dkim->signatures) {
    print join("\t", $sig->domain, $sig->selector, $sig->algorithm, $sig->result_detail), "\n";
}
print "RESULT\t", $dkim->result_detail, "\n";
"""


def perl_problem(ed25519: bool = False) -> str | None:
    if shutil.which("perl") is None:
        return "perl is not installed"
    for mod in ("Mail::DKIM::Verifier", "Net::DNS::Resolver"):
        if subprocess.run(["perl", f"-M{mod}", "-e1"], capture_output=True).returncode:
            return f"Perl module {mod} is missing (Debian package libmail-dkim-perl)"
    if ed25519 and subprocess.run(["perl", "-MMail::DKIM::Algorithm::ed25519_sha256", "-e1"],
                                  capture_output=True).returncode:
        return "this Mail::DKIM has no Ed25519 (OpenDKIM checks Ed25519 instead)"
    if ed25519 and subprocess.run(["perl", "-MCrypt::PK::Ed25519", "-e1"],
                                  capture_output=True).returncode:
        return "Mail::DKIM needs Crypt::PK::Ed25519 for Ed25519 (Debian package libcryptx-perl)"
    return None


async def mail_dkim_verify(tmp: Path, port: int, message: bytes,
                           ed25519: bool = False) -> list[str]:
    """Mail::DKIM's per-signature results (`pass`, `fail (...)`), asking the DNS server."""
    problem = perl_problem(ed25519)
    if problem:
        pytest.skip(problem)
    script = tmp / "verify.pl"
    script.write_text(PERL_VERIFIER, encoding="utf-8")
    msg = tmp / "message.eml"
    msg.write_bytes(message)
    proc = await asyncio.create_subprocess_exec(
        "perl", str(script), str(port), str(msg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = [line.split("\t") for line in out.decode().splitlines()]
    assert lines and lines[-1][0] == "RESULT", out.decode()
    return [parts[3] for parts in lines[:-1]]


OPENDKIM_CONF = """Mode v
Syslog no
AlwaysAddARHeader yes
TestPublicKeys {keys}
"""
_AR_RESULT = re.compile(r"dkim=(\w+)[^;]*?header\.s=([\w.-]+)")


def opendkim_verify(tmp: Path, message: bytes, published: dict[str, str]) -> dict[str, str]:
    """OpenDKIM's result per selector (`pass`, `fail` ...), keys from a TestPublicKeys file."""
    binary = shutil.which("opendkim") or shutil.which("opendkim", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.skip("opendkim is not installed (Debian package opendkim)")
    keyfile = tmp / "opendkim-keys.txt"
    keyfile.write_text("".join(f"{n} {t}\n" for n, t in published.items()), encoding="utf-8")
    conf = tmp / "opendkim.conf"
    conf.write_text(OPENDKIM_CONF.format(keys=keyfile), encoding="utf-8")
    msg = tmp / "opendkim-message.eml"
    msg.write_bytes(message)
    # -vvv prints the Authentication-Results header it would add: one result per signature.
    proc = subprocess.run([binary, "-x", str(conf), "-t", str(msg), "-vvv"],
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    ar = out[out.find("Authentication-Results"):]
    return {sel: result for result, sel in _AR_RESULT.findall(ar)}


@pytest.fixture
async def dns_zone() -> AsyncIterator[Callable[[dict[str, str]], Awaitable[ZoneServer]]]:
    """Start a loopback DNS server answering TXT for {name: record text}."""
    servers: list[ZoneServer] = []

    async def start(txt: dict[str, str]) -> ZoneServer:
        zone = {(name, "TXT"): [txt_rdata(text)] for name, text in txt.items()}
        server = await ZoneServer(zone).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def make_config(tmp: Path, **dkim_keys: str) -> Config:
    """A config with data_dir in `tmp`; `dkim_keys` as TOML values, e.g. on_missing_key='"x"'."""
    env = {"MAILGW_GATEWAY__DATA_DIR": str(tmp)}
    env.update({f"MAILGW_DKIM__{k.upper()}": v for k, v in dkim_keys.items()})
    return load(None, environ=env)


def config_file(tmp: Path, extra: str = "") -> Path:
    """A mailgw.toml for CLI tests (data_dir in `tmp`)."""
    path = tmp / "mailgw.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp.as_posix()}"\n{extra}', encoding="utf-8")
    return path
