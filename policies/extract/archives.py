"""Zip and 7z archives: every member is handed back to the file examiner, under the limits.

Member count, inflated size per member, total inflated size and compression ratio are checked
before and while inflating; a member that breaks one of them becomes an "archive_bomb" defect and
is not examined. Encrypted members are recorded as encrypted attachments with an
"encrypted_archive" defect.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import py7zr
import py7zr.io

from policies.extraction import Attachment

from .context import Run
from .zipread import LimitExceeded, member_name, read_member
from .zipscan import end_records, hidden_members

# examine(run, data, label, filename, declared_type, depth) -> attachment index
Examine = Callable[[Run, bytes, str, str, str, int], int]


class ArchiveStatus:
    """What the archive reader learnt about the archive itself."""

    def __init__(self) -> None:
        self.encrypted = False
        self.unreadable = False


def _encrypted_member(run: Run, label: str, name: str, size: int, kind: str) -> None:
    run.attachment(Attachment(part=label, filename=name, declared_type="", sniffed_type="unknown",
                              size=size, encrypted=True))
    run.defect(label, "encrypted_archive", f"{kind} member {name} is encrypted")


def walk_zip(run: Run, data: bytes, label: str, depth: int, examine: Examine) -> ArchiveStatus:
    status = ArchiveStatus()
    limits = run.limits
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as exc:
        run.defect(label, "unreadable", f"zip: {exc}")
        status.unreadable = True
        return status
    with zf:
        files = [info for info in infos if not info.is_dir()]
        if len(files) > limits.max_archive_members:
            run.defect(label, "archive_bomb",
                       f"{len(files)} members, only the first {limits.max_archive_members} read")
            files = files[: limits.max_archive_members]
        for info in files:
            name = member_name(info)
            member_label = f"{label} > {name}"
            if not run.count_part(member_label):
                break
            if info.flag_bits & 0x1:
                status.encrypted = True
                _encrypted_member(run, member_label, name, info.file_size, "zip")
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > limits.max_file_size or (
                info.file_size > limits.ratio_floor and ratio > limits.max_ratio
            ):
                run.defect(member_label, "archive_bomb",
                           f"{info.file_size} bytes declared from {info.compress_size}")
                continue
            if info.file_size > run.remaining():
                # The message's total budget is spent: stop here, say so once.
                run.charge(member_label, info.file_size)
                break
            cap = min(limits.max_file_size, run.remaining())
            try:
                content = read_member(zf, info, cap, limits.max_ratio, limits.ratio_floor)
            except LimitExceeded as exc:
                run.defect(member_label, "archive_bomb", str(exc))
                continue
            except Exception as exc:
                run.defect(member_label, "unreadable", f"zip member: {exc}")
                run.attachment(Attachment(part=member_label, filename=name, declared_type="",
                                          sniffed_type="unknown", size=info.file_size,
                                          unreadable=True))
                continue
            if not run.charge(member_label, len(content)):
                break
            examine(run, content, member_label, name, "", depth + 1)
        _hidden(run, data, infos, label, depth, examine, status)
    return status


def _hidden(run: Run, data: bytes, infos: list[zipfile.ZipInfo], label: str, depth: int,
            examine: Examine, status: ArchiveStatus) -> None:
    """Members only some unzip tools see (not in the central directory, concatenated zips)."""
    limits = run.limits
    if end_records(data, infos) > 1:
        run.defect(label, "zip_concatenated", "more than one end-of-directory record",
                   ambiguous=True)
    cap = min(limits.max_file_size, run.remaining())
    members = hidden_members(data, infos, cap, limits.max_ratio, limits.ratio_floor,
                             limits.max_archive_members)
    for member in members:
        member_label = f"{label} > {member.name} (not in the zip directory)"
        run.defect(member_label, "zip_hidden_member", "local header outside the directory",
                   ambiguous=True)
        if member.encrypted:
            status.encrypted = True
            _encrypted_member(run, member_label, member.name, 0, "zip")
            continue
        if member.problem:
            kind = "archive_bomb" if member.problem.startswith("archive_bomb") else "unreadable"
            run.defect(member_label, kind, member.problem)
            continue
        if not run.count_part(member_label) or not run.charge(member_label, len(member.data)):
            break
        examine(run, member.data, member_label, member.name, "", depth + 1)


class _CappedIO(py7zr.io.Py7zIO):
    """A py7zr output buffer that refuses to grow beyond its cap or the archive's total cap."""

    def __init__(self, cap: int, factory: _CappedFactory) -> None:
        self.cap = cap
        self.factory = factory
        self.buffer = io.BytesIO()
        self.length = 0

    def write(self, s: Any) -> int:
        self.length += len(s)
        self.factory.total += len(s)
        if self.length > self.cap:
            raise LimitExceeded(f"more than {self.cap} bytes inflated")
        if self.factory.total > self.factory.total_cap:
            raise LimitExceeded(f"more than {self.factory.total_cap} bytes inflated in all")
        return self.buffer.write(s)

    def read(self, size: int | None = None) -> bytes:
        return self.buffer.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.buffer.seek(offset, whence)

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.length


class _CappedFactory(py7zr.io.WriterFactory):
    def __init__(self, cap: int, total_cap: int) -> None:
        self.cap = cap
        self.total_cap = total_cap
        self.total = 0
        self.outputs: dict[str, _CappedIO] = {}

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        out = _CappedIO(self.cap, self)
        self.outputs[filename] = out
        return out


def walk_7z(run: Run, data: bytes, label: str, depth: int, examine: Examine) -> ArchiveStatus:
    status = ArchiveStatus()
    limits = run.limits
    try:
        with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
            if archive.needs_password():
                status.encrypted = True
                run.defect(label, "encrypted_archive", "7z archive is encrypted")
                return status
            entries = [e for e in archive.list() if not e.is_directory]
            if len(entries) > limits.max_archive_members:
                run.defect(label, "archive_bomb", f"{len(entries)} members")
                return status
            declared = sum(e.uncompressed or 0 for e in entries)
            cap = min(limits.max_file_size, run.remaining())
            too_big = [e.filename for e in entries if (e.uncompressed or 0) > cap]
            if too_big or declared > run.remaining() or (
                declared > limits.ratio_floor and declared / max(len(data), 1) > limits.max_ratio
            ):
                run.defect(label, "archive_bomb", f"{declared} bytes declared in {len(data)}")
                return status
            # Declared sizes may lie: the writers enforce the caps on what is really inflated.
            factory = _CappedFactory(cap, run.remaining())
            archive.extract(factory=factory)
    except LimitExceeded as exc:
        run.defect(label, "archive_bomb", str(exc))
        return status
    except py7zr.PasswordRequired:
        status.encrypted = True
        run.defect(label, "encrypted_archive", "7z member is encrypted")
        return status
    except Exception as exc:
        status.unreadable = True
        run.defect(label, "unreadable", f"7z: {type(exc).__name__}: {exc}")
        return status
    for name, out in factory.outputs.items():
        member_label = f"{label} > {name}"
        if not run.count_part(member_label) or not run.charge(member_label, out.length):
            break
        examine(run, out.buffer.getvalue(), member_label, name, "", depth + 1)
    return status
