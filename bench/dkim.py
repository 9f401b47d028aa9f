"""DKIM signing speed: signatures per second for one message, dkimpy alone vs mailgw's path.

Prints figures, asserts nothing (it is not a test). For a message of `--size` bytes (default
10 KB: a text part and a PDF attachment) it measures signatures per CPU second (one core; CPU
time, so other load on the machine does not lower it), `--seconds` of CPU time each:

- dkimpy RSA-2048: `dkim.DKIM.sign()`, canonicalisation and pure-Python RSA;
- mailgw RSA-2048: `mailgw.dkim.sign.sign()`, dkimpy canonicalisation + OpenSSL RSA;
- dkimpy Ed25519 (needs PyNaCl) and mailgw Ed25519 (OpenSSL);
- mailgw RSA + Ed25519 (dual signing, one message, two signatures);
- `sign_outgoing()` RSA: the whole transform-stage step (From/domain checks, key cache, signing).

With `--gateway-rate R` (delivered msgs/s per core, e.g. from `bench/load.py`: delivered_per_s /
processes) or `--load-json FILE` (the output of `bench/load.py --json`: gateway CPU seconds per
accepted message), it also prints the share of signing in the end-to-end cost per message:
sign seconds per message / gateway CPU seconds per message (the signing cost is added to the
gateway's unless `--load-includes-signing`: the DKIM stage is not yet enabled in the workers).

    python bench/dkim.py                     # about 15 s
    python bench/dkim.py --gateway-rate 150 --json
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from collections.abc import Callable
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

# Run as `python bench/dkim.py`, this file's directory comes first on sys.path and this module
# would hide dkimpy's `dkim` package: take the directory out before importing it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import dkim  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

from mailgw.config import load  # noqa: E402
from mailgw.dkim import keys, sign, sign_outgoing  # noqa: E402

DOMAIN = "phutho.gov.vn"
SENDER = f"bench.dkim@{DOMAIN}"


def message(size: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"Bench <{SENDER}>"
    m["To"] = "doitac@example.org"
    m["Subject"] = "Công văn số 2445/UBND (bench)"
    m["Date"] = "Thu, 26 Nov 2026 09:00:00 +0700"
    m["Message-ID"] = "<bench.dkim@phutho.gov.vn>"
    m.set_content("Kính gửi các đơn vị,\nXem tệp đính kèm.\n")
    base = len(m.as_bytes(policy=email_policy.SMTP)) + 400
    # base64 grows 4/3; aim the whole message at `size` bytes.
    m.add_attachment(b"%PDF-1.4\n" + bytes(range(256)) * (max(0, size - base) * 3 // 4 // 256),
                     maintype="application", subtype="pdf", filename="cv-2445.pdf")
    return m.as_bytes(policy=email_policy.SMTP)


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per CPU second of `fn` over about `seconds` of CPU time (after a warm-up call).

    CPU time, not wall time: on a busy machine the figure stays "per core".
    """
    fn()
    n, start = 0, time.process_time()
    deadline = start + seconds
    while True:
        fn()
        n += 1
        now = time.process_time()
        if now >= deadline:
            return n / (now - start)


def measure(size: int, seconds: float) -> dict[str, Any]:
    msg = message(size)
    rsa_key, ed_key = keys.generate("rsa"), keys.generate("ed25519")
    rsa_pem = keys.private_pem(rsa_key)
    ed_seed = base64.b64encode(ed_key.private_bytes(serialization.Encoding.Raw,
                                                    serialization.PrivateFormat.Raw,
                                                    serialization.NoEncryption()))
    include = sign.header_list(sign.parse(msg)[0])
    cases: dict[str, Callable[[], object]] = {
        "dkimpy_rsa": lambda: dkim.DKIM(msg).sign(
            b"r1", DOMAIN.encode(), rsa_pem, canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include),
        "mailgw_rsa": lambda: sign.sign(msg, DOMAIN, [("r1", rsa_key)]),
        "mailgw_ed25519": lambda: sign.sign(msg, DOMAIN, [("e1", ed_key)]),
        "mailgw_rsa_ed25519": lambda: sign.sign(msg, DOMAIN, [("r1", rsa_key), ("e1", ed_key)]),
    }
    try:
        import nacl  # noqa: F401

        cases["dkimpy_ed25519"] = lambda: dkim.DKIM(msg).sign(
            b"e1", DOMAIN.encode(), ed_seed, signature_algorithm=b"ed25519-sha256",
            canonicalize=(b"relaxed", b"relaxed"), include_headers=include)
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        config = load(None, environ={"MAILGW_GATEWAY__DATA_DIR": tmp})
        keys.add_key(keys.key_dir(config), DOMAIN, "r1", "rsa")
        cases["sign_outgoing_rsa"] = lambda: sign_outgoing(config, msg, SENDER, "outbound")
        rates = {name: round(rate(fn, seconds), 1) for name, fn in cases.items()}
    return {"message_bytes": len(msg), "seconds_each": seconds, "per_second": rates}


def share(per_second: dict[str, float], cpu_per_message: float,
          includes_signing: bool) -> dict[str, float]:
    """Signing cost as a share of the gateway's CPU seconds per message (plus the signing, if
    the measured gateway did not sign)."""
    out = {}
    for name, r in per_second.items():
        cost = 1 / r
        out[name] = round(cost / (cpu_per_message if includes_signing
                                  else cpu_per_message + cost), 4)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10240, help="message size in bytes (10240)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per figure (2)")
    p.add_argument("--gateway-rate", type=float, default=None, metavar="MSGS_PER_S_PER_CORE",
                   help="gateway delivered msgs/s per core, for the share of signing")
    p.add_argument("--load-json", type=Path, default=None, metavar="FILE",
                   help="bench/load.py --json output: gateway CPU s per message for the share")
    p.add_argument("--load-includes-signing", action="store_true",
                   help="the gateway figure already includes DKIM signing (default: it did "
                        "not sign, so the signing cost is added to it)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    report = measure(args.size, args.seconds)
    cpu_per_message = None
    if args.load_json is not None:
        g = json.loads(args.load_json.read_text())["gateway"]
        cpu_per_message = g["server_cpu_s"] / g["accepted"]
        report["gateway_cpu_s_per_message"] = round(cpu_per_message, 6)
    elif args.gateway_rate:
        cpu_per_message = 1 / args.gateway_rate
        report["gateway_cpu_s_per_message"] = round(cpu_per_message, 6)
    if cpu_per_message:
        report["share_of_cost_per_message"] = share(report["per_second"], cpu_per_message,
                                                    args.load_includes_signing)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"DKIM signing, {report['message_bytes']} byte message, one core, "
          f"{args.seconds:g} s per figure")
    for name, r in report["per_second"].items():
        print(f"  {name:<22} {r:>9.1f} signatures/s  ({1000 / r:.3f} ms each)")
    if cpu_per_message:
        print(f"share of signing in the gateway's CPU cost per message "
              f"({cpu_per_message * 1000:.2f} ms):")
        for name, s in report["share_of_cost_per_message"].items():
            print(f"  {name:<22} {s:>8.1%}")


if __name__ == "__main__":
    main()
