"""The directory: units of addresses (directory, subdomain fallback, unknown) and its use by the
classify/decide stages, including a per-unit policy override keyed by the directory's unit."""

from __future__ import annotations

from mailgw.config import load
from mailgw.directory import import_csv, lookup_unit, unit_info
from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.pipeline.stages import classify, decide
from mailgw.store.db import session_factory
from mailgw.violations.enforce import Enforcement
from tests.enforcement.gateway import DIRECTORY_CSV
from tests.policies.docgen import make_docx, make_message

DOMAINS = ["phutho.gov.vn"]
OFFICIAL = ["UBND TỈNH PHÚ THỌ", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Số: 12/KH-UBND",
            "Phú Thọ, ngày 2 tháng 3 năm 2026", "KẾ HOẠCH", "Nơi nhận:", "KT. CHỦ TỊCH"]


def test_lookup_directory_then_subdomain_then_unknown(engine) -> None:
    with session_factory(engine).begin() as s:
        assert import_csv(s, DIRECTORY_CSV) == (9, 6)
    with session_factory(engine)() as s:
        assert lookup_unit(s, "NguyenVanA.STC@phutho.gov.vn", DOMAINS) == ("stc", "directory")
        assert lookup_unit(s, "ai.do@thanhson.phutho.gov.vn", DOMAINS) == (
            "thanhson", "subdomain")
        assert lookup_unit(s, "ai.do@example.org", DOMAINS) == ("unknown", "unknown")
        assert lookup_unit(s, "", DOMAINS) == ("unknown", "unknown")
        info = unit_info(s, "stttt")
        assert info.name == "Sở Thông tin và Truyền thông"
        assert info.admins == ("it.stttt@phutho.gov.vn", "antt.stttt@phutho.gov.vn")


def test_import_merges_and_replaces(engine, tmp_path) -> None:
    extra = tmp_path / "extra.csv"
    extra.write_text("kind,id,name,parent,head_name,head_address,admins,unit,position\n"
                     "unit,sxd,Sở Xây dựng,,,,,,\n"
                     "user,a.sxd@phutho.gov.vn,Người A,,,,,sxd,Chuyên viên\n", encoding="utf-8")
    with session_factory(engine).begin() as s:
        import_csv(s, DIRECTORY_CSV)
        import_csv(s, extra)
    with session_factory(engine)() as s:
        assert lookup_unit(s, "nguyenvana.stc@phutho.gov.vn", DOMAINS)[0] == "stc"
        assert lookup_unit(s, "a.sxd@phutho.gov.vn", DOMAINS)[0] == "sxd"
    with session_factory(engine).begin() as s:
        import_csv(s, extra, replace=True)
    with session_factory(engine)() as s:
        assert lookup_unit(s, "nguyenvana.stc@phutho.gov.vn", DOMAINS)[1] == "subdomain"


def _verdict(engine, tmp_path, files: list[str], sender: str) -> tuple[str, str]:
    env = {"MAILGW_GATEWAY__DATA_DIR": f'"{tmp_path}"',
           "MAILGW_POLICY__FILES": "[" + ", ".join(f'"{f}"' for f in files) + "]"}
    sessions = session_factory(engine)
    with sessions.begin() as s:
        import_csv(s, DIRECTORY_CSV)
    enf = Enforcement.build(load(None, environ=env), sessions)
    raw = make_message(attachments=[("kh.docx", "application/vnd.openxmlformats-"
                                     "officedocument.wordprocessingml.document",
                                     make_docx(OFFICIAL))]).replace(b"\n", b"\r\n")
    mail = Mail(session=SessionInfo("submission", auth_user=sender), mail_from=sender,
                rcpt_tos=["b@gmail.com"], raw=raw)
    classify.run(mail, enf)
    decide.run(mail, enf)
    return mail.verdict, mail.identity["unit"]


def test_unit_override_uses_the_directory_unit(engine, tmp_path) -> None:
    rollout = tmp_path / "rollout.toml"
    rollout.write_text('[[unit]]\nname = "stc"\nmonitor = true\n', encoding="utf-8")
    files = ["policies/phutho.toml", str(rollout)]
    # Sở Tài chính (directory unit stc, though its address has no stc subdomain) is monitored.
    assert _verdict(engine, tmp_path, files, "nguyenvana.stc@phutho.gov.vn") == ("flag", "stc")
    assert _verdict(engine, tmp_path, files, "tranthib.stttt@phutho.gov.vn") == (
        "reject", "stttt")


def test_cache_keeps_its_copy_for_the_refresh_time(engine, tmp_path) -> None:
    from mailgw.directory.cache import DirectoryCache

    sessions = session_factory(engine)
    kept, fresh = DirectoryCache(sessions, DOMAINS, 3600), DirectoryCache(sessions, DOMAINS, 0)
    assert kept.unit_of("nguyenvana.stc@phutho.gov.vn") == ("phutho.gov.vn", "subdomain")
    with sessions.begin() as s:
        import_csv(s, DIRECTORY_CSV)
    # An import reaches a process after its refresh time (or at once with refresh 0).
    assert kept.unit_of("nguyenvana.stc@phutho.gov.vn") == ("phutho.gov.vn", "subdomain")
    assert fresh.unit_of("NguyenVanA.stc@phutho.gov.vn") == ("stc", "directory")
    kept.refresh = 0.0001
    assert kept.unit_of("<NguyenVanA.stc@phutho.gov.vn>") == ("stc", "directory")
    assert kept.unit_of("x@lamthao.phutho.gov.vn") == ("lamthao", "subdomain")
    assert kept.unit_of("x@gmail.com") == ("unknown", "unknown")
