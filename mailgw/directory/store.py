"""Directory storage: CSV import, look-ups by address and unit, and the `show` listing.

The CSV (UTF-8, a header line, one row per unit or user) has the columns
`kind,id,name,parent,head_name,head_address,admins,unit,position`:

- `kind=unit`: `id` (short, e.g. `stc`), `name` (Vietnamese), `parent` (a unit id or empty),
  `head_name`, `head_address`, `admins` (addresses separated by `;`);
- `kind=user`: `id` is the address, `name` the display name, `unit` the unit id, `position`.

Import checks the whole file first and writes nothing if any row is bad (the error names the
line); rows replace the stored ones with the same id, `replace=True` empties the directory
first. An address not in the directory falls back to the unit of its subdomain, else "unknown".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailgw.pipeline.stages.identify import unit_from_address
from mailgw.store.models import DirectoryUnit, DirectoryUser

COLUMNS = ("kind", "id", "name", "parent", "head_name", "head_address", "admins", "unit",
           "position")


class DirectoryError(Exception):
    """A bad directory file (names the line) or an unknown unit."""


@dataclass(frozen=True)
class UnitInfo:
    """A unit as notices need it (an unknown unit has only its id)."""

    id: str
    name: str = ""
    head_name: str = ""
    head_address: str = ""
    admins: tuple[str, ...] = field(default=())


def _addr(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def _parse(text: str, source: str) -> tuple[list[DirectoryUnit], list[DirectoryUser]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("kind", "id", "name") if c not in (reader.fieldnames or [])]
    if missing:
        raise DirectoryError(f"{source}:1: missing column(s) {', '.join(missing)} "
                             f"(expected {','.join(COLUMNS)})")
    units: list[DirectoryUnit] = []
    users: list[DirectoryUser] = []
    for row in reader:
        line = reader.line_num
        r = {k: (v or "").strip() for k, v in row.items() if k is not None}
        kind = r.get("kind", "").lower()
        if not r.get("id"):
            raise DirectoryError(f"{source}:{line}: empty id")
        if kind == "unit":
            if not r.get("name"):
                raise DirectoryError(f"{source}:{line}: unit {r['id']} has no name")
            admins = [_addr(a) for a in r.get("admins", "").replace(",", ";").split(";")
                      if a.strip()]
            for a in [*admins, _addr(r.get("head_address", ""))]:
                if a and "@" not in a:
                    raise DirectoryError(f"{source}:{line}: {a!r} is not an address")
            units.append(DirectoryUnit(id=r["id"].lower(), name=r["name"],
                                       parent_id=r.get("parent", "").lower() or None,
                                       head_name=r.get("head_name", ""),
                                       head_address=_addr(r.get("head_address", "")),
                                       admins=admins))
        elif kind == "user":
            address = _addr(r["id"])
            if "@" not in address:
                raise DirectoryError(f"{source}:{line}: {r['id']!r} is not an address")
            if not r.get("unit"):
                raise DirectoryError(f"{source}:{line}: user {address} has no unit")
            users.append(DirectoryUser(address=address, unit_id=r["unit"].lower(),
                                       display_name=r.get("name", ""),
                                       position=r.get("position", "")))
        else:
            raise DirectoryError(f"{source}:{line}: kind must be unit or user, "
                                 f"got {r.get('kind')!r}")
    return units, users


def import_csv(session: Session, path: str | Path, replace: bool = False) -> tuple[int, int]:
    """Load a directory CSV in the caller's transaction; returns (units, users) written."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DirectoryError(f"{p}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DirectoryError(f"{p}: not UTF-8") from None
    units, users = _parse(text, str(p))
    if replace:
        session.execute(delete(DirectoryUser))
        session.execute(delete(DirectoryUnit))
    known = {u.id for u in units} | set(session.scalars(select(DirectoryUnit.id)))
    for u in units:
        if u.parent_id and u.parent_id not in known:
            raise DirectoryError(f"{p}: unit {u.id}: unknown parent unit {u.parent_id}")
    for usr in users:
        if usr.unit_id not in known:
            raise DirectoryError(f"{p}: user {usr.address}: unknown unit {usr.unit_id}")
    for obj in [*units, *users]:
        session.merge(obj)
    return len(units), len(users)


def lookup_unit(session: Session, address: str, domains: list[str]) -> tuple[str, str]:
    """The unit of `address` and where it came from: "directory", "subdomain" or "unknown"."""
    user = session.get(DirectoryUser, _addr(address)) if address else None
    if user is not None:
        return user.unit_id, "directory"
    unit = unit_from_address(_addr(address), domains) if address else "unknown"
    return unit, "unknown" if unit == "unknown" else "subdomain"


def unit_info(session: Session, unit_id: str) -> UnitInfo:
    u = session.get(DirectoryUnit, unit_id)
    if u is None:
        return UnitInfo(unit_id)
    return UnitInfo(u.id, u.name, u.head_name, u.head_address, tuple(u.admins or ()))


def show(session: Session) -> list[dict[str, Any]]:
    """Every unit (by id) with its users (plain data for print or --json)."""
    units = session.scalars(select(DirectoryUnit).order_by(DirectoryUnit.id)).all()
    users = session.scalars(select(DirectoryUser).order_by(DirectoryUser.address)).all()
    by_unit: dict[str, list[dict[str, str]]] = {}
    for usr in users:
        by_unit.setdefault(usr.unit_id, []).append(
            {"address": usr.address, "name": usr.display_name, "position": usr.position})
    return [{"id": u.id, "name": u.name, "parent": u.parent_id, "head_name": u.head_name,
             "head_address": u.head_address, "admins": list(u.admins or []),
             "users": by_unit.get(u.id, [])} for u in units]
