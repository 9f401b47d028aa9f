"""Signing outgoing mail: which messages are signed, with which keys, and what a missing key does.

`sign_outgoing(config, content, mail_from, direction)` is called by the post-acceptance
`transform` stage (in a worker thread, never on the event loop), last, after every header the
gateway adds. It signs only outbound mail whose header From and envelope sender (if not empty)
are in a signing domain (`gateway.domains` + `dkim.domains`, subdomains included); the signing
domain d= is the most specific configured domain that covers the From domain, so a subdomain
with its own keys signs with them. One signature per algorithm in `dkim.algorithms`.

Keys come from the manifest (see `mailgw.dkim.keys`) and are cached per process; the cache is
reloaded when a manifest changes, so `mailgw dkim rotate --activate` takes effect without a
restart. A missing or unreadable key: `dkim.on_missing_key = "refuse"` raises `DkimError` (the
stage fails and the message is parked, never sent unsigned); `"unsigned"` logs a warning and
sends the message unsigned. `check_startup(config)` runs the same checks once at start-up.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailgw.dkim import keys, sign
from mailgw.dkim.errors import DkimError, DkimRefused
from mailgw.pipeline.mail import is_large
from policies.classifiers.addresses import is_under

if TYPE_CHECKING:
    from mailgw.config import Config
    from mailgw.pipeline.offload import ContentProcesses

log = logging.getLogger("mailgw.dkim")

# What a message is signed with: its headers and body, the header list, the domain, the keys.
_Plan = tuple[sign.Headers, bytes, list[bytes], str, list[tuple[str, keys.PrivateKey]]]


def covering_domain(domain: str, signing: list[str]) -> str | None:
    """The most specific signing domain equal to `domain` or a parent of it."""
    domain = _ascii_domain(domain)
    best: str | None = None
    for d in signing:
        if is_under(domain, d) and (best is None or len(d) > len(best)):
            best = d
    return best


def _ascii_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain  # not a valid IDN: it matches no configured (ASCII) domain


def from_domains(headers: sign.Headers) -> list[str]:
    """The domains of the header From addresses (UTF-8 headers allowed, RFC 6532)."""
    values = [v.decode("utf-8", "replace") for n, v in headers if n.lower() == b"from"]
    return [addr.rpartition("@")[2] for _, addr in email.utils.getaddresses(values)
            if "@" in addr]


@dataclass(frozen=True)
class _Loaded:
    """The active keys of one domain, as of the manifest's mtime."""

    stamp: tuple[int, int] | None
    keys: list[tuple[str, keys.PrivateKey]]
    problems: list[str]


class Signer:
    """Signing for one configuration: settings plus a cache of the active keys per domain."""

    def __init__(self, config: Config) -> None:
        self.enabled: bool = config.dkim.enabled
        self.base = keys.key_dir(config)
        self.domains = keys.signing_domains(config)
        self.algorithms: list[str] = list(config.dkim.algorithms)
        self.refuse = config.dkim.on_missing_key == "refuse"
        self._cache: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    def keys_for(self, domain: str) -> tuple[list[tuple[str, keys.PrivateKey]], list[str]]:
        """(selector, key) per configured algorithm, and the problems found (missing keys)."""
        stamp = _stamp(keys.manifest_path(self.base, domain))
        with self._lock:
            cached = self._cache.get(domain)
            if cached is None or cached.stamp != stamp:
                cached = self._cache[domain] = self._load(domain, stamp)
        return cached.keys, cached.problems

    def _load(self, domain: str, stamp: tuple[int, int] | None) -> _Loaded:
        found: list[tuple[str, keys.PrivateKey]] = []
        problems: list[str] = []
        try:
            manifest = keys.load_manifest(self.base, domain)
        except DkimError as exc:
            return _Loaded(stamp, [], [str(exc)])
        for algorithm in self.algorithms:
            entry = manifest.active(algorithm)
            if entry is None:
                problems.append(
                    f"{domain}: no active {algorithm} DKIM key in "
                    f"{keys.manifest_path(self.base, domain)} (make one with `mailgw dkim keygen "
                    f"--domain {domain} --selector SELECTOR --algorithm {algorithm}`)")
                continue
            try:
                key = keys.load_private_key(keys.key_path(self.base, domain, entry), domain,
                                            algorithm)
            except DkimError as exc:
                problems.append(str(exc))
                continue
            found.append((entry.selector, key))
        return _Loaded(stamp, found, problems)

    def problems(self) -> list[str]:
        """Every missing or unreadable key of every signing domain."""
        out: list[str] = []
        for domain in self.domains:
            out += self.keys_for(domain)[1]
        return out

    def may_sign(self, mail_from: str, direction: str) -> bool:
        """Whether mail with this envelope may be signed at all (before reading it)."""
        if not self.enabled or direction != "outbound":
            return False
        if mail_from and covering_domain(mail_from.rpartition("@")[2], self.domains) is None:
            log.debug("not signing: envelope sender %s is outside the signing domains", mail_from)
            return False
        return True

    def sign(self, content: bytes, mail_from: str, direction: str) -> bytes:
        """The message signed, or unchanged if it is not ours to sign (see the module doc)."""
        plan = self._plan(content, mail_from, direction)
        return content if plan is None else sign.sign_parsed(content, *plan)

    def signatures(self, content: bytes, mail_from: str, direction: str) -> bytes:
        """The DKIM-Signature header lines `sign()` would prepend (b"" if none)."""
        plan = self._plan(content, mail_from, direction)
        return b"" if plan is None else b"".join(sign.signatures(content, *plan))

    def _plan(self, content: bytes, mail_from: str, direction: str) -> _Plan | None:
        """What to sign with (headers, body, header list, domain, keys), or None: unsigned."""
        if not self.may_sign(mail_from, direction):
            return None
        headers, body = sign.parse(content)
        # Raises DkimRefused for no From, two From or two Subject headers: such mail from
        # our senders does not leave at all.
        include = sign.header_list(headers)
        authors = from_domains(headers)
        domains = {covering_domain(d, self.domains) for d in authors}
        if not authors or None in domains:
            log.info("not signing: header From %s is outside the signing domains",
                     ", ".join(authors) or "(none)")
            return None
        if len(domains) > 1:
            raise DkimRefused(f"the From header names several domains: {', '.join(authors)}")
        domain = domains.pop()
        assert domain is not None
        found, problems = self.keys_for(domain)
        if problems:
            if self.refuse:
                raise DkimError("; ".join(problems) + " (dkim.on_missing_key = refuse)")
            log.warning("sending unsigned or with fewer signatures (dkim.on_missing_key = "
                        "unsigned): %s", "; ".join(problems))
            if not found:
                return None
        return headers, body, include, domain, found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


_signers: weakref.WeakKeyDictionary[Config, Signer] = weakref.WeakKeyDictionary()
_signers_lock = threading.Lock()


def signer_for(config: Config) -> Signer:
    """The process's Signer for this configuration object (made once, keys cached)."""
    with _signers_lock:
        signer = _signers.get(config)
        if signer is None:
            signer = _signers[config] = Signer(config)
        return signer


def sign_outgoing(config: Config, content: bytes, mail_from: str, direction: str,
                  processes: ContentProcesses | None = None) -> bytes:
    """Sign `content` if it is outbound mail from a signing domain; see the module doc.

    A large message (`is_large`) is read and hashed in one of `processes` when given: in this
    process the hashing thread held the GIL in every 1 MB step, and whenever the OS took the
    CPU from it the event loop waited too (bench/stall.py). Only the signature lines come back.

    Raises DkimRefused (two From/Subject) or DkimError (a missing key with on_missing_key =
    refuse); the post-acceptance stage then parks the message.
    """
    signer = signer_for(config)
    if processes is None or not is_large(len(content)) or not signer.may_sign(mail_from,
                                                                              direction):
        return signer.sign(content, mail_from, direction)
    prefix = processes.compute(signatures_in_file, content, config, mail_from, direction)
    return prefix + content if prefix else content


def signatures_in_file(path: str, config: Config, mail_from: str, direction: str) -> bytes:
    """`Signer.signatures` of the message in the file at `path` (run in a worker process)."""
    return signer_for(config).signatures(Path(path).read_bytes(), mail_from, direction)


def check_startup(config: Config) -> list[str]:
    """Check every signing domain's keys at start-up.

    Raises DkimError listing each missing or unreadable key (file and domain) when
    `dkim.on_missing_key = "refuse"`; with `"unsigned"` logs them and returns them.
    """
    signer = signer_for(config)
    if not signer.enabled:
        return []
    problems = signer.problems()
    if problems and signer.refuse:
        raise DkimError("; ".join(problems))
    for p in problems:
        log.warning("DKIM: %s: mail from this domain goes out unsigned "
                    "(dkim.on_missing_key = unsigned)", p)
    return problems


def ensure_first_keys(config: Config) -> list[str]:
    """On first start, make a key for each signing domain that has never had one.

    Like the self-signed TLS certificate of the embedded defaults: a newcomer's gateway signs at
    once and logs the DNS record to publish (`mailgw dkim dns` prints it again). A domain whose
    manifest exists is left alone, so a key that goes missing later is still a start-up error.
    Returns the zone lines of the keys made.
    """
    if not config.dkim.enabled:
        return []
    base = keys.key_dir(config)
    made = []
    for domain in keys.signing_domains(config):
        manifest = keys.load_manifest(base, domain)
        if manifest.keys or keys.manifest_path(base, domain).exists():
            continue
        for algorithm in config.dkim.algorithms:
            selector = keys.new_selector(manifest, algorithm)
            entry, key = keys.add_key(base, domain, selector, algorithm)
            line = keys.zone_line(domain, entry.selector, keys.txt_record(algorithm, key))
            log.warning("DKIM: made a %s key for %s (selector %s); publish this record:\n%s",
                        algorithm, domain, entry.selector, line)
            made.append(line)
            manifest = keys.load_manifest(base, domain)
    return made


def prepare(config: Config) -> None:
    """What `serve` does before it listens: first keys, then the start-up check (DkimError)."""
    ensure_first_keys(config)
    check_startup(config)
