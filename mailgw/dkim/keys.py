"""DKIM key store: PEM files and a manifest per signing domain, under `dkim.key_dir`.

Layout (default key_dir: `<data_dir>/dkim`)::

    <key_dir>/<domain>/<selector>.key     private key, PEM, mode 0600
    <key_dir>/<domain>/manifest.json      which selector is active, pending or retired

The manifest is the only source of truth for what signs: a key file that is not in it is ignored,
a key in it whose file is missing or unreadable is a `DkimError` naming the file and the domain.
It is replaced atomically (temporary file + rename), so gateway processes reading it while
`mailgw dkim rotate` writes it see the old or the new version, never half of one.
States: `active` (signs; one per algorithm), `pending` (made by rotate, waits for its DNS record),
`retired` (no longer signs, still listed until `mailgw dkim remove`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailgw.dkim.errors import DkimError

if TYPE_CHECKING:
    from mailgw.config import Config

ALGORITHMS = ("rsa", "ed25519")
RSA_BITS = 2048
MANIFEST = "manifest.json"
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class KeyEntry:
    """One key of a domain as the manifest records it."""

    selector: str
    algorithm: str
    state: str
    file: str  # relative to the domain's directory, or absolute
    created: str


@dataclass
class Manifest:
    """The keys of one signing domain."""

    domain: str
    keys: list[KeyEntry] = field(default_factory=list)

    def find(self, selector: str) -> KeyEntry | None:
        return next((k for k in self.keys if k.selector == selector), None)

    def active(self, algorithm: str) -> KeyEntry | None:
        return next((k for k in self.keys if k.state == "active" and k.algorithm == algorithm),
                    None)

    def pending(self) -> list[KeyEntry]:
        return [k for k in self.keys if k.state == "pending"]

    def set_state(self, selector: str, state: str) -> None:
        self.keys = [replace(k, state=state) if k.selector == selector else k for k in self.keys]


def key_dir(config: Config) -> Path:
    """The configured key directory (`dkim.key_dir`, else `<data_dir>/dkim`)."""
    return Path(config.dkim.key_dir) if config.dkim.key_dir else config.data_dir / "dkim"


def signing_domains(config: Config) -> list[str]:
    """Every signing domain: the internal domains and `dkim.domains`, without repeats."""
    return list(dict.fromkeys([*config.gateway.domains, *config.dkim.domains]))


def check_selector(selector: str) -> str:
    """The selector in lower case, or ValueError if it is not a single DNS label."""
    s = selector.strip().lower()
    if not _SELECTOR.match(s):
        raise ValueError(f"selector {selector!r} must be one DNS label (letters, digits, -)")
    return s


def manifest_path(base: Path, domain: str) -> Path:
    return base / domain / MANIFEST


def load_manifest(base: Path, domain: str) -> Manifest:
    """The domain's manifest; an empty one if there is none yet."""
    path = manifest_path(base, domain)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Manifest(domain)
    except (OSError, ValueError) as exc:
        raise DkimError(f"{domain}: cannot read the DKIM manifest {path}: {exc}") from None
    try:
        keys = [KeyEntry(**k) for k in raw["keys"]]
    except (KeyError, TypeError) as exc:
        raise DkimError(f"{domain}: malformed DKIM manifest {path}: {exc}") from None
    return Manifest(domain, keys)


def save_manifest(base: Path, manifest: Manifest) -> None:
    """Write the manifest atomically (readers never see a half-written file)."""
    directory = base / manifest.domain
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = {"domain": manifest.domain, "keys": [asdict(k) for k in manifest.keys]}
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / MANIFEST)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def key_path(base: Path, domain: str, entry: KeyEntry) -> Path:
    p = Path(entry.file)
    return p if p.is_absolute() else base / domain / p


def generate(algorithm: str) -> PrivateKey:
    """A new private key: RSA-2048 or Ed25519."""
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown algorithm {algorithm!r} (expected rsa or ed25519)")


def private_pem(key: PrivateKey) -> bytes:
    # PKCS#1 for RSA: the format dkimpy, OpenDKIM and Mail::DKIM all read.
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if isinstance(key, rsa.RSAPrivateKey)
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def write_private_key(path: Path, key: PrivateKey) -> None:
    """Write `key` to a new file with mode 0600 (never over an existing key)."""
    # Only the gateway's user may list the key directory.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key))
        f.flush()
        os.fsync(f.fileno())


def load_private_key(path: Path, domain: str, algorithm: str) -> PrivateKey:
    """Read a PEM key; DkimError naming the file and the domain if it is unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DkimError(f"{domain}: DKIM key {path} cannot be read: "
                        f"{exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimError(f"{domain}: DKIM key {path} is not a usable PEM key: {exc}") from None
    want = rsa.RSAPrivateKey if algorithm == "rsa" else ed25519.Ed25519PrivateKey
    if not isinstance(key, want):
        raise DkimError(f"{domain}: DKIM key {path} is not an {algorithm} key")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 1024:
        raise DkimError(f"{domain}: DKIM key {path} has only {key.key_size} bits")
    return key


def public_b64(key: PrivateKey) -> str:
    """The p= value: DER SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519 (RFC 8463)."""
    pub = key.public_key()
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = pub.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode("ascii")


def txt_record(algorithm: str, key: PrivateKey) -> str:
    """The TXT record text, e.g. `v=DKIM1; k=rsa; p=MIIB...`."""
    return f"v=DKIM1; k={algorithm}; p={public_b64(key)}"


def split_255(text: str) -> list[str]:
    """The record cut into character-strings of at most 255 bytes (RFC 1035 3.3)."""
    data = text.encode("ascii")
    return [data[i:i + 255].decode("ascii") for i in range(0, len(data), 255)] or [""]


def record_name(domain: str, selector: str) -> str:
    return f"{selector}._domainkey.{domain}"


def zone_line(domain: str, selector: str, record: str) -> str:
    """A zone-file line with the record split into quoted strings of at most 255 bytes."""
    parts = " ".join(f'"{p}"' for p in split_255(record))
    return f"{record_name(domain, selector)}. 3600 IN TXT ( {parts} )"


def add_key(base: Path, domain: str, selector: str, algorithm: str,
            state: str | None = None) -> tuple[KeyEntry, PrivateKey]:
    """Make a key and record it: active if the domain has no active key of that algorithm,
    else pending (it then waits for its DNS record, see `mailgw dkim rotate`)."""
    selector = check_selector(selector)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (expected rsa or ed25519)")
    manifest = load_manifest(base, domain)
    if manifest.find(selector) is not None:
        raise DkimError(f"{domain}: selector {selector} exists already")
    path = base / domain / f"{selector}.key"
    if path.exists():
        raise DkimError(f"{domain}: {path} exists already and is not in the manifest; "
                        "move it away or choose another selector")
    if state is None:
        state = "pending" if manifest.active(algorithm) else "active"
    key = generate(algorithm)
    write_private_key(path, key)
    entry = KeyEntry(selector, algorithm, state, path.name,
                     dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    manifest.keys.append(entry)
    save_manifest(base, manifest)
    return entry, key


def new_selector(manifest: Manifest, algorithm: str, today: dt.date | None = None) -> str:
    """A fresh selector such as `rsa202611` (then `rsa202611b`, `rsa202611c` ...)."""
    today = today or dt.datetime.now(dt.UTC).date()
    stem = f"{algorithm}{today:%Y%m}"
    taken = {k.selector for k in manifest.keys}
    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        if stem + suffix not in taken:
            return stem + suffix
    raise DkimError(f"{manifest.domain}: too many selectors this month")


def activate(base: Path, domain: str, selector: str) -> KeyEntry | None:
    """Make a pending key active; the previously active key of its algorithm is retired.

    Returns the retired entry, if any.
    """
    manifest = load_manifest(base, domain)
    entry = manifest.find(selector)
    if entry is None:
        raise DkimError(f"{domain}: no selector {selector} in the manifest")
    old = manifest.active(entry.algorithm)
    if old is not None and old.selector != selector:
        manifest.set_state(old.selector, "retired")
    manifest.set_state(selector, "active")
    save_manifest(base, manifest)
    return old if old is not None and old.selector != selector else None


def remove(base: Path, domain: str, selector: str) -> KeyEntry:
    """Forget a retired or pending key and delete its file (an active key cannot be removed)."""
    manifest = load_manifest(base, domain)
    entry = manifest.find(selector)
    if entry is None:
        raise DkimError(f"{domain}: no selector {selector} in the manifest")
    if entry.state == "active":
        raise DkimError(f"{domain}: {selector} is the active key; rotate to another one first")
    manifest.keys = [k for k in manifest.keys if k.selector != selector]
    save_manifest(base, manifest)
    with contextlib.suppress(FileNotFoundError):
        key_path(base, domain, entry).unlink()
    return entry


def describe(entry: KeyEntry) -> dict[str, Any]:
    return asdict(entry)
