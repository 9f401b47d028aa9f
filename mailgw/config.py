"""Configuration: one schema, one TOML file, environment overrides.

Every key has a type, a default and a one-sentence description here (the single source for
`config/mailgw.example.toml` and `mailgw config show`). Loading order: embedded defaults, then the
TOML file, then `MAILGW_<SECTION>__<KEY>` environment variables. Anything unknown or of the wrong
type is a `ConfigError` that names the key and what is expected; the gateway never starts on a
half-read configuration.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024


class ConfigError(Exception):
    """A configuration problem, phrased for the operator (names the key and what is wrong)."""


@dataclass(frozen=True)
class Key:
    """One configuration key: its default, its type check and its documentation."""

    default: Any
    doc: str
    check: Callable[[str, Any], Any]


# ---------------------------------------------------------------------------------------------
# Value checks. Each returns the (possibly normalised) value or raises ConfigError naming the key.


def _str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{key}: expected a string, got {_show(v)}")
    return v


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{key}: expected true or false, got {_show(v)}")
    return v


def _int(minimum: int = 0) -> Callable[[str, Any], int]:
    def check(key: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{key}: expected a whole number, got {_show(v)}")
        if v < minimum:
            raise ConfigError(f"{key}: expected a number >= {minimum}, got {v}")
        return v

    return check


def _float(minimum: float = 0.0) -> Callable[[str, Any], float]:
    def check(key: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"{key}: expected a number, got {_show(v)}")
        if v < minimum:
            raise ConfigError(f"{key}: expected a number >= {minimum}, got {v}")
        return float(v)

    return check


def _str_list(key: str, v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{key}: expected a list of strings, got {_show(v)}")
    return list(v)


def _listen_list(key: str, v: Any) -> list[str]:
    items = _str_list(key, v)
    for item in items:
        parse_hostport(item, key)
    return items


def _domain_list(key: str, v: Any) -> list[str]:
    items = _str_list(key, v)
    out = []
    for d in items:
        d = d.strip().lower().rstrip(".")
        if not d or " " in d or "@" in d:
            raise ConfigError(f"{key}: {d!r} is not a domain name")
        out.append(d)
    return out


def _nameservers(key: str, v: Any) -> list[str]:
    """DNS servers as "ip" or "ip:port"; dnspython takes one port for all of them."""
    items = _str_list(key, v)
    ports = set()
    for item in items:
        host, sep, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        if not sep:
            host, port = item.strip("[]"), "53"
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ConfigError(f"{key}: {item!r} is not an IP address (ip or ip:port)") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{key}: {item!r}: bad port")
        ports.add(int(port))
    if len(ports) > 1:
        raise ConfigError(f"{key}: all DNS servers must use the same port")
    return items


def split_nameservers(items: list[str]) -> tuple[list[str], int]:
    """(IP addresses, port) of a validated gateway.nameservers list."""
    hosts, port = [], 53
    for item in items:
        if item.count(":") == 1:
            host, _, p = item.rpartition(":")
            hosts.append(host)
            port = int(p)
        else:
            hosts.append(item.strip("[]"))
    return hosts, port


def _reserved_empty(key: str, v: Any) -> str:
    """A key of a part that is not built yet: refuse a value rather than ignore it silently."""
    if _str(key, v):
        raise ConfigError(f"{key}: the IMAP proxy is not available in this version; "
                          "leave it empty")
    return ""


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def check(key: str, v: Any) -> str:
        if v not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {_show(v)}")
        return str(v)

    return check


def _next_hop(key: str, v: Any) -> str:
    from mailgw.delivery.routes import parse_next_hop  # local: routes imports nothing of config

    _str(key, v)
    try:
        parse_next_hop(v)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return str(v)


def _routes(key: str, v: Any) -> dict[str, str]:
    if not isinstance(v, dict):
        raise ConfigError(f"{key}: expected a table of domain = next hop, got {_show(v)}")
    out = {}
    for domain, hop in v.items():
        out[domain.strip().lower().rstrip(".")] = _next_hop(f"{key}.{domain}", hop)
    return out


def _aliases(key: str, v: Any) -> dict[str, list[str]]:
    if not isinstance(v, dict):
        raise ConfigError(f"{key}: expected a table of user = [addresses], got {_show(v)}")
    return {u.lower(): [a.lower() for a in _str_list(f"{key}.{u}", a)] for u, a in v.items()}


def _trusted_hosts(key: str, v: Any) -> list[dict[str, Any]]:
    """Trusted application hosts: each a name, its networks and the senders it may use."""
    if not isinstance(v, list):
        raise ConfigError(f"{key}: expected a list of tables, got {_show(v)}")
    out = []
    for i, host in enumerate(v):
        where = f"{key}[{i}]"
        if not isinstance(host, dict):
            raise ConfigError(f"{where}: expected a table with name, networks, senders")
        unknown = set(host) - {"name", "networks", "senders"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        name = _str(f"{where}.name", host.get("name", f"host{i}"))
        nets = _str_list(f"{where}.networks", host.get("networks", []))
        senders = [s.lower() for s in _str_list(f"{where}.senders", host.get("senders", []))]
        if not nets:
            raise ConfigError(f"{where}.networks: at least one network is required")
        if not senders:
            raise ConfigError(
                f"{where}.senders: list the sender addresses this host may use "
                "(a trusted host never gets blanket relay rights)"
            )
        parsed = []
        for n in nets:
            try:
                parsed.append(ipaddress.ip_network(n, strict=False))
            except ValueError:
                raise ConfigError(f"{where}.networks: {n!r} is not an IP network") from None
        out.append({"name": name, "networks": parsed, "senders": senders})
    return out


def _show(v: Any) -> str:
    return f"{type(v).__name__} {v!r}"


def parse_hostport(value: str, key: str = "listen") -> tuple[str, int]:
    """Split `host:port` or `[v6]:port` into its parts (ConfigError naming `key` if malformed)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"{key}: {value!r} is not host:port")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"{key}: {value!r}: the host must be an IP address") from None
    p = int(port)
    if not 0 <= p <= 65535:
        raise ConfigError(f"{key}: {value!r}: port out of range")
    return host, p


def _dkim_algorithms(key: str, v: Any) -> list[str]:
    items = _str_list(key, v)
    # RSA stays mandatory: most receivers do not verify Ed25519 signatures yet (RFC 8463).
    if items not in (["rsa"], ["rsa", "ed25519"]):
        raise ConfigError(f'{key}: expected ["rsa"] or ["rsa", "ed25519"], got {_show(v)}')
    return items


# ---------------------------------------------------------------------------------------------
# The schema: section -> key -> Key. Order here is the order of the example file.

SCHEMA: dict[str, dict[str, Key]] = {
    "gateway": {
        "domains": Key(["phutho.gov.vn"],
                       "Internal mail domains; their subdomains are internal too.", _domain_list),
        "data_dir": Key("var", "Directory for everything the embedded defaults write "
                        "(database, certificate, delivered mail).", _str),
        "hostname": Key("", "Name this gateway uses in greetings and Received headers; "
                        "empty: the machine's host name.", _str),
        "processes": Key(0, "Gateway processes sharing the listening sockets; 0: one per CPU core.",
                         _int(0)),
        "min_free_disk_mb": Key(200, "Below this much free space in data_dir, new mail gets "
                                "452 4.3.1 before DATA.", _int(0)),
        "nameservers": Key([], "DNS servers for MX delivery and inbound checks, as ip or ip:port; "
                           "empty: the system's resolv.conf.", _nameservers),
        "log_level": Key("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.",
                         _choice("DEBUG", "INFO", "WARNING", "ERROR")),
        "event_loop": Key("uvloop", "Event loop of the gateway processes: uvloop (libuv, "
                          "about 15 % less CPU per message) or asyncio (the standard library's).",
                          _choice("uvloop", "asyncio")),
    },
    "store": {
        "url": Key("", "Database URL; empty: sqlite:///<data_dir>/mailgw.db. "
                   "PostgreSQL: postgresql+psycopg://user@host/db. With SQLite, messages over "
                   "1 MiB are kept in files in <database file>.spool/ beside it (back up both).",
                   _str),
        "sqlite_synchronous": Key("FULL", "SQLite synchronous mode: FULL survives power loss, "
                                  "NORMAL only process crashes.", _choice("FULL", "NORMAL")),
    },
    "tls": {
        "cert": Key("", "PEM certificate chain; empty: a self-signed certificate is made in "
                    "data_dir on first start.", _str),
        "key": Key("", "PEM private key for tls.cert.", _str),
    },
    "submission": {
        "listen": Key(["127.0.0.1:2587"], "Addresses for submission with STARTTLS "
                      "(production: 0.0.0.0:587).", _listen_list),
        "listen_tls": Key(["127.0.0.1:2465"], "Addresses for submission over implicit TLS "
                          "(production: 0.0.0.0:465).", _listen_list),
        "auth": Key("local", "Password check: local (mailgw users) or imap (upstream server).",
                    _choice("local", "imap")),
        "aliases": Key({}, "Extra sender addresses per user, e.g. {\"a@phutho.gov.vn\" = "
                       "[\"vanthu@phutho.gov.vn\"]}.", _aliases),
        "trusted_hosts": Key([], "Application hosts that may send without AUTH: "
                             "[{name, networks = [CIDR], senders = [addresses]}].", _trusted_hosts),
        "max_message_size": Key(35 * MB, "Largest message accepted, in bytes (announced by SIZE).",
                                _int(1024)),
        "max_recipients": Key(100, "Most recipients per message.", _int(1)),
        "max_line_length": Key(998, "Longest line in a message, without CRLF (RFC 5322 says 998).",
                               _int(78)),
        "max_commands": Key(1000, "Most SMTP commands in one session.", _int(10)),
        "max_connections": Key(500, "Most simultaneous connections per process.", _int(1)),
        "max_connections_per_ip": Key(50, "Most simultaneous connections from one IP address.",
                                      _int(1)),
        "timeout": Key(300.0, "Seconds of client silence before the session is closed.",
                       _float(1)),
        "rate_per_user": Key(600, "Messages one user may send per hour (0: no limit).", _int(0)),
        "rate_per_ip": Key(3000, "Messages one IP address may send per hour (0: no limit).",
                           _int(0)),
        "auth_cache_ttl": Key(300.0, "Seconds a successful login is remembered (a keyed hash, "
                              "never the password), so clients that log in for every message "
                              "skip the password hash; 0: off.", _float(0)),
        "auth_delay_base": Key(0.5, "Seconds of delay after the first failed login; doubles per "
                               "further failure of the same IP or user.", _float(0)),
        "auth_delay_max": Key(30.0, "Longest delay after failed logins, in seconds.", _float(0)),
    },
    "mx": {
        "listen": Key(["127.0.0.1:2525"], "Addresses for mail from the internet "
                      "(production: 0.0.0.0:25).", _listen_list),
        "dns_timeout": Key(5.0, "Seconds for one DNS lookup of the SPF, DKIM and DMARC checks.",
                           _float(0.1)),
        "auth_timeout": Key(20.0, "Seconds for all DNS lookups of one message's SPF, DKIM and "
                            "DMARC checks; past it the message gets 451 4.4.3.", _float(0.1)),
        "authserv_id": Key("", "Name in the Authentication-Results headers we add (and strip "
                           "when forged); empty: the gateway host name.", _str),
    },
    "imap_proxy": {
        "listen": Key(["127.0.0.1:2143"], "IMAP proxy addresses with STARTTLS.", _listen_list),
        "listen_tls": Key(["127.0.0.1:2993"], "IMAP proxy addresses with implicit TLS.",
                          _listen_list),
        "upstream": Key("", "host:port of the mailbox server; empty: proxy off. (The IMAP proxy "
                        "is not built yet: these keys are reserved, a value is refused.)",
                        _reserved_empty),
    },
    "delivery": {
        "default": Key("maildir:var/delivered", "Next hop for domains without a route: "
                       "maildir:PATH, smtp:[host]:port or mx.", _next_hop),
        "routes": Key({}, "Next hop per recipient domain, e.g. {\"phutho.gov.vn\" = "
                      "\"smtp:[10.0.0.5]:25\"}.", _routes),
        "require_tls": Key(False, "Refuse to hand mail to an smtp: next hop without STARTTLS.",
                           _bool),
        "concurrency": Key(20, "Deliveries in progress at once per process.", _int(1)),
        "retry_initial": Key(60.0, "Seconds before the first retry after a temporary failure; "
                             "doubles each time.", _float(0)),
        "retry_max": Key(3600.0, "Longest wait between two retries, in seconds.", _float(0)),
        "max_age": Key(5 * 86400.0, "Seconds after which an undelivered message is bounced "
                       "(default 5 days).", _float(0)),
        "connect_timeout": Key(30.0, "Seconds to wait for a next hop to answer.", _float(0.1)),
        "command_timeout": Key(300.0, "Seconds per SMTP reply awaited from a next hop; a whole "
                               "transaction gets their sum.", _float(0.1)),
        "dns_timeout": Key(10.0, "Seconds for one DNS lookup (mx routing).", _float(0.1)),
        "bounce_from": Key("", "Sender of delivery reports; empty: MAILER-DAEMON@<first domain>.",
                           _str),
    },
    "policy": {
        "files": Key(["policies/phutho.toml"], "Policy files, read in order.", _str_list),
        "timeout": Key(10.0, "Seconds classification of one message may take before the client "
                       "gets 451 4.3.0 (fail closed).", _float(0.001)),
    },
    "notices": {
        "sender": Key("", "From address of violation notices; empty: "
                      "mailgw-noreply@<first domain>.", _str),
        "templates": Key("", "Directory whose Jinja2 templates replace the packaged notice "
                         "templates of the same name; empty: the packaged ones.", _str),
        "admins": Key([], "Addresses that get every notice a rule sends to administrators, "
                      "besides the administrators of the sender's unit.", _str_list),
    },
    "directory": {
        "refresh": Key(60.0, "Seconds a gateway process keeps its copy of the directory's "
                       "address -> unit table; 0: read the store for every message.",
                       _float(0)),
    },
    "dkim": {
        "enabled": Key(True, "DKIM-sign outgoing mail whose sender is in a signing domain "
                       "(gateway.domains and dkim.domains).", _bool),
        "domains": Key([], "Signing domains besides gateway.domains; a subdomain listed here "
                       "signs with its own keys.", _domain_list),
        "key_dir": Key("", "Directory of the keys (<domain>/<selector>.key, mode 0600, and "
                       "<domain>/manifest.json); empty: <data_dir>/dkim.", _str),
        "algorithms": Key(["rsa"], "Signatures per message: [\"rsa\"] (RSA-2048) or "
                          "[\"rsa\", \"ed25519\"] (dual signing, RFC 8463).", _dkim_algorithms),
        "on_missing_key": Key("refuse", "When a signing key is missing or unreadable: refuse "
                              "(park the message, as 451) or unsigned (send it unsigned, "
                              "with a logged warning).", _choice("refuse", "unsigned")),
    },
}


class Section:
    """Read-only attribute access to one section's values."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self._name = name
        self._values = dict(values)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            # Not a key: pickle asks for __setstate__ and friends before _values exists
            # (a Config goes to the worker processes with a signing job).
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"{self._name}.{key}") from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


class Config:
    """The validated configuration; `config.submission.max_recipients` and so on."""

    def __init__(self, values: dict[str, dict[str, Any]], source: str) -> None:
        self.values = values
        self.source = source
        for name, section in values.items():
            setattr(self, name, Section(name, section))

    # Typed accessors for the sections (mypy sees these; __init__ sets them).
    gateway: Any
    store: Any
    tls: Any
    submission: Any
    mx: Any
    imap_proxy: Any
    delivery: Any
    policy: Any
    notices: Any
    directory: Any
    dkim: Any

    @property
    def data_dir(self) -> Path:
        return Path(self.gateway.data_dir)

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'mailgw.db'}"

    @functools.cached_property
    def hostname(self) -> str:
        # Looked up once: the edge asks for it on every connection, and getfqdn() is a
        # reverse DNS query that would block the event loop each time.
        return str(self.gateway.hostname or socket.getfqdn())

    @property
    def bounce_from(self) -> str:
        return self.delivery.bounce_from or f"MAILER-DAEMON@{self.gateway.domains[0]}"

    def changed(self) -> dict[str, dict[str, Any]]:
        """The keys whose value differs from the embedded default."""
        out: dict[str, dict[str, Any]] = {}
        defaults = defaults_values()
        for sec, keys in self.values.items():
            for k, v in keys.items():
                if v != defaults[sec][k]:
                    out.setdefault(sec, {})[k] = v
        return out


def defaults_values() -> dict[str, dict[str, Any]]:
    return {
        sec: {k: key.check(f"{sec}.{k}", key.default) for k, key in keys.items()}
        for sec, keys in SCHEMA.items()
    }


def _apply(values: dict[str, dict[str, Any]], raw: Mapping[str, Any], origin: str) -> None:
    for sec, table in raw.items():
        if sec not in SCHEMA:
            raise ConfigError(f"{origin}: unknown section [{sec}] "
                              f"(known: {', '.join(SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [{sec}] must be a table")
        for k, v in table.items():
            if k not in SCHEMA[sec]:
                raise ConfigError(f"{origin}: unknown key {sec}.{k} "
                                  f"(known in [{sec}]: {', '.join(SCHEMA[sec])})")
            values[sec][k] = SCHEMA[sec][k].check(f"{sec}.{k}", v)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """MAILGW_<SECTION>__<KEY>=value; the value is read as a TOML value, else as a string."""
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith("MAILGW_") or "__" not in name:
            continue
        sec, _, key = name[len("MAILGW_"):].partition("__")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.setdefault(sec.lower(), {})[key.lower()] = value
    return out


def load(path: str | os.PathLike[str] | None = None,
         environ: Mapping[str, str] | None = None) -> Config:
    """Load the configuration: `path`, else $MAILGW_CONFIG, else ./mailgw.toml, else defaults."""
    environ = os.environ if environ is None else environ
    values = defaults_values()
    source = "embedded defaults"
    if path is None:
        path = environ.get("MAILGW_CONFIG") or ("mailgw.toml" if Path("mailgw.toml").exists()
                                                else None)
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the configuration file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: the configuration file is not UTF-8") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
        _apply(values, raw, str(p))
        source = str(p)
    _apply(values, _env_overrides(environ), "environment (MAILGW_*)")
    _cross_checks(values)
    return Config(values, source)


def _cross_checks(values: dict[str, dict[str, Any]]) -> None:
    if not values["gateway"]["domains"]:
        raise ConfigError("gateway.domains: at least one internal domain is required")
    tls = values["tls"]
    if bool(tls["cert"]) != bool(tls["key"]):
        raise ConfigError("tls.cert and tls.key: give both or neither")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float) and v.is_integer():
        return f"{v:.1f}"
    if isinstance(v, list):
        if v and isinstance(v[0], dict):
            return "[" + ", ".join(_toml_value(x) for x in v) + "]"
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return _toml_value(str(v))
    return str(v)


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def render(values: dict[str, dict[str, Any]], with_docs: bool = True) -> str:
    """The configuration as TOML, each key preceded by its description."""
    lines: list[str] = []
    for sec, keys in values.items():
        lines.append(f"[{sec}]")
        for k, v in keys.items():
            if with_docs:
                lines.append(f"# {SCHEMA[sec][k].doc}")
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)
