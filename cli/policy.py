"""`mailgw policy lint|show|test`: check a policy file, print the effective rules, try messages.

Thin: the work is in `policies`. Policy files come from `--policy FILE` (repeatable, read in
order) or the config key `policy.files`; a relative path is looked up in the current directory,
then next to the installed `policies` package, so `policies/phutho.toml` works from anywhere.

`policy test` takes one .eml file, a folder of .eml files, or an mbox file. The envelope is
`--mail-from`/`--rcpt` when given (for every message); otherwise, per message, the entry of a
`labels.json` beside the files (the corpus format: file, mail_from, rcpt_to), and failing that
the headers: Return-Path for the sender, Delivered-To / X-Original-To, else To + Cc, for the
recipients (Bcc recipients are then unknown: give --rcpt to be exact). With labels.json, the
folder run also compares each verdict with its `expected` label and prints a summary.
"""

from __future__ import annotations

import json
import mailbox
from collections.abc import Iterator
from datetime import date
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import click

from cli.main import Ctx, UserError, pass_ctx
from policies import Policy, PolicyError, Verdict, load_policy
from policies.rules import BLOCKING

policy_files_option = click.option(
    "--policy", "policy_files", metavar="FILE", multiple=True,
    help="Policy file (repeat for several, read in order); default: config policy.files.",
)


def _load(ctx: Ctx, files: tuple[str, ...]) -> Policy:
    names = list(files) or list(ctx.config.policy.files)
    try:
        return load_policy(names)
    except PolicyError as exc:
        raise UserError(str(exc)) from None


def _parse_date(value: str | None) -> date:
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--date: {value!r} is not a date (YYYY-MM-DD)") from None


@click.group("policy")
def policy() -> None:
    """Check the policy, show its rules, try it on messages."""


@policy.command("lint")
@click.argument("files", nargs=-1, metavar="[FILE]...")
@pass_ctx
def lint(ctx: Ctx, files: tuple[str, ...]) -> None:
    """Check policy files (default: config policy.files); exit 1 with file:line if one is bad."""
    p = _load(ctx, files)
    enabled = sum(1 for r in p.rules if r.enabled)
    click.echo(f"ok: {', '.join(p.files)}: {len(p.rules)} rules ({enabled} enabled), "
               f"{len(p.units)} unit overrides, {len(p.exemptions)} exemptions, "
               f"version {p.version}")


def _conditions(p: Policy, rule_id: str) -> str:
    rule = next(r for r in p.rules if r.id == rule_id)
    w = rule.when
    parts = [f"{k}={','.join(sorted(v))}" for k, v in (
        ("direction", w.direction), ("sender_class", w.sender_class),
        ("sender_address", w.sender_address), ("sender_unit", w.sender_unit),
        ("recipients_any", w.recipients_any), ("recipients_all", w.recipients_all),
        ("recipient_address", w.recipient_address)) if v]
    parts += [f"{name}={'true' if want else 'false'}" for name, want in w.facts]
    if w.size_over is not None:
        parts.append(f"size_over={w.size_over}")
    if w.size_under is not None:
        parts.append(f"size_under={w.size_under}")
    return " ".join(parts) or "(every message)"


@policy.command("show")
@policy_files_option
@click.option("--unit", default=None, help="Show the rules as they apply to this unit.")
@click.option("--date", "on_date", default=None, metavar="YYYY-MM-DD",
              help="Date for exemption expiry (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def show(ctx: Ctx, policy_files: tuple[str, ...], unit: str | None, on_date: str | None,
         as_json: bool) -> None:
    """Print the effective rules in order, after unit overrides, monitor mode and exemptions."""
    p = _load(ctx, policy_files)
    today = _parse_date(on_date)
    u = p.unit(unit.strip().lower()) if unit else None
    rows: list[dict[str, Any]] = []
    for n, r in enumerate(p.rules, 1):
        action = (u.action_for(r.id) if u else None) or r.action
        enabled = r.enabled and not (u and r.id in u.disabled)
        monitored = action in BLOCKING and (p.monitor or bool(u and u.monitor))
        rows.append({
            "order": n, "id": r.id, "enabled": enabled, "action": action,
            "effective_action": "flag" if monitored else action, "reason": r.reason,
            "when": _conditions(p, r.id), "notify": list(r.notify),
            "description_vi": r.description.vi, "source": r.source,
            "exemptions": [e.id for e in p.exemptions if r.id in e.rules and e.active(today)],
        })
    exemptions = [{
        "id": e.id, "rules": sorted(e.rules), "senders": sorted(e.senders),
        "recipients": sorted(e.recipients), "justification": e.justification,
        "expires": e.expires.isoformat() if e.expires else None, "active": e.active(today),
    } for e in p.exemptions]
    units = [{"unit": x.unit, "monitor": x.monitor, "actions": dict(x.actions),
              "disable": sorted(x.disabled)} for x in p.units]
    if as_json:
        click.echo(json.dumps({"files": list(p.files), "version": p.version,
                               "monitor": p.monitor, "unit": unit, "rules": rows,
                               "units": units, "exemptions": exemptions},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"# {', '.join(p.files)}  version {p.version}")
    if p.monitor:
        click.echo("# chế độ giám sát (monitor): mọi lệnh chặn chỉ được ghi nhận (flag)")
    if unit:
        click.echo(f"# đơn vị {unit}: " + ("có điều chỉnh riêng" if u else "không có điều chỉnh"))
    for row in rows:
        state = "" if row["enabled"] else "  [tắt / off]"
        act = row["action"] if row["effective_action"] == row["action"] else \
            f"{row['action']} -> flag (monitor)"
        click.echo(f"{row['order']}. {row['id']}: {act}  reason={row['reason'] or '-'}{state}")
        click.echo(f"     khi / when: {row['when']}")
        if row["description_vi"]:
            click.echo(f"     {row['description_vi']}")
        if row["exemptions"]:
            click.echo(f"     miễn trừ / exemptions: {', '.join(row['exemptions'])}")
    click.echo("  (không quy tắc nào khớp / no rule matches: allow)")
    for x in units:
        click.echo(f"đơn vị / unit {x['unit']}: monitor={str(x['monitor']).lower()} "
                   f"actions={x['actions']} disable={x['disable']}")
    for e in exemptions:
        status = "còn hiệu lực" if e["active"] else "hết hiệu lực"
        click.echo(f"miễn trừ / exemption {e['id']} ({status}, hết hạn {e['expires'] or 'không'}):"
                   f" rules={e['rules']} senders={e['senders']} recipients={e['recipients']}"
                   f" — {e['justification']}")


# -- policy test ----------------------------------------------------------------------------


def _header_envelope(raw: bytes) -> tuple[str, list[str]]:
    msg = BytesHeaderParser().parsebytes(raw)
    mail_from = ""
    rp = msg.get_all("Return-Path") or []
    if rp:
        found = getaddresses([str(rp[0])])
        mail_from = found[0][1] if found else ""
    rcpts: list[str] = []
    for name in ("Delivered-To", "X-Original-To"):
        rcpts = [a for _, a in getaddresses([str(v) for v in msg.get_all(name) or []]) if a]
        if rcpts:
            break
    if not rcpts:
        values = [str(v) for v in (msg.get_all("To") or []) + (msg.get_all("Cc") or [])]
        rcpts = [a for _, a in getaddresses(values) if a]
    return mail_from, rcpts


def _messages(target: Path) -> Iterator[tuple[str, bytes]]:
    if target.is_dir():
        files = sorted(f for f in target.iterdir() if f.suffix.lower() == ".eml" and f.is_file())
        if not files:
            raise UserError(f"{target}: no .eml files in this folder")
        for f in files:
            yield f.name, f.read_bytes()
        return
    with target.open("rb") as fh:
        head = fh.read(5)
    if head == b"From ":
        box = mailbox.mbox(str(target), create=False)
        try:
            for i, key in enumerate(box.keys(), 1):
                yield f"{target.name}#{i}", box.get_bytes(key)
        finally:
            box.close()
        return
    yield target.name, target.read_bytes()


def _labels(target: Path) -> dict[str, dict[str, Any]]:
    folder = target if target.is_dir() else target.parent
    path = folder / "labels.json"
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return {e["file"]: e for e in entries}
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a list of labels ({exc})") from None


def _human(v: Verdict) -> str:
    lines = [f"action:   {v.action}" + (" (monitor mode; would be "
                                         f"{v.intended_action})" if v.monitored else ""),
             f"reasons:  {', '.join(v.reasons) or '-'}",
             f"rules:    {', '.join(v.rules) or '-'}"]
    if v.evidence:
        lines.append("evidence:")
        lines += [f"  {e.part} | {e.signal} | {e.text}" for e in v.evidence]
    if v.exemptions:
        lines.append(f"exemptions: {', '.join(v.exemptions)}")
    if v.smtp_text and v.action in BLOCKING:
        lines.append(f"smtp:     550 5.7.1 {v.smtp_text}")
    if v.notice_vi and v.action != "allow":
        lines.append(f"notice:   {v.notice_vi}")
    lines.append(f"policy:   {v.policy_version}")
    return "\n".join(lines)


@policy.command("test")
@click.argument("target", metavar="MESSAGE.eml|FOLDER|MBOX")
@click.option("--mail-from", default=None, metavar="ADDR",
              help="Envelope sender (MAIL FROM); '' is the null sender.")
@click.option("--rcpt", multiple=True, metavar="ADDR", help="Envelope recipient (repeatable).")
@click.option("--unit", default=None, help="The sender's unit (for per-unit overrides).")
@click.option("--direction", type=click.Choice(["outbound", "inbound"]), default=None,
              help="Default: outbound for an internal sender, else inbound.")
@click.option("--date", "on_date", default=None, metavar="YYYY-MM-DD",
              help="Date for exemption expiry (default: today).")
@policy_files_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@pass_ctx
def test(ctx: Ctx, target: str, mail_from: str | None, rcpt: tuple[str, ...],
         unit: str | None, direction: str | None, on_date: str | None,
         policy_files: tuple[str, ...], as_json: bool) -> None:
    """Print the verdict for a message, or one line per message of a folder or an mbox.

    The envelope is --mail-from/--rcpt; without them, the labels.json beside the files, else
    the headers (Return-Path; Delivered-To / X-Original-To, else To + Cc).
    """
    path = Path(target)
    if not path.exists():
        raise UserError(f"{target}: no such file or folder")
    p = _load(ctx, policy_files)
    today = _parse_date(on_date)
    addresses = p.address_classifier(ctx.config.gateway.domains)
    labels = {} if (mail_from is not None and rcpt) else _labels(path)
    single = path.is_file() and not _is_mbox(path)
    agree = total = 0
    for name, raw in _messages(path):
        label = labels.get(name)
        # Each half of the envelope: the option if given, else the label, else the headers.
        if label is not None:
            known_from, known_rcpt = label.get("mail_from", ""), list(label.get("rcpt_to", []))
        elif mail_from is None or not rcpt:
            known_from, known_rcpt = _header_envelope(raw)
        else:
            known_from, known_rcpt = "", []
        env_from = mail_from if mail_from is not None else known_from
        env_rcpt = list(rcpt) or known_rcpt
        if not env_rcpt:
            raise UserError(f"{name}: no recipient: give --rcpt ADDR")
        facts = p.classify(raw, env_from, env_rcpt, addresses=addresses, direction=direction,
                           sender_unit=unit)
        v = p.evaluate(facts, today=today)
        if single:
            click.echo(json.dumps(v.as_json(), ensure_ascii=False) if as_json else _human(v))
            return
        mark = ""
        if label is not None and "expected" in label:
            total += 1
            got = "block" if v.action in BLOCKING else v.action
            ok = got == label["expected"] and list(v.reasons) == list(label.get("reasons", []))
            agree += ok
            mark = "" if ok else f"  MISMATCH expected {label['expected']} " \
                                 f"{','.join(label.get('reasons', [])) or '-'}"
        if as_json:
            click.echo(json.dumps({"file": name, **v.as_json()}, ensure_ascii=False))
        else:
            click.echo(f"{name}\t{v.action}\t{','.join(v.reasons) or '-'}\t"
                       f"{','.join(v.rules) or '-'}{mark}")
    if total and not as_json:
        click.echo(f"{agree}/{total} agree with labels.json")


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "
