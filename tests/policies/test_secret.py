"""State-secret markings: stamps and the Độ mật field, without ordinary uses of "mật"."""

import unicodedata

import pytest

from policies.classifiers.secret import find_markings, line_marking


@pytest.mark.parametrize(
    "line",
    [
        "MẬT", "TỐI MẬT", "TUYỆT MẬT", "  MẬT  ", "[MẬT]", "( TỐI MẬT )", "**TUYỆT MẬT**",
        "“MẬT”", "│ MẬT │", "┌ MẬT ┐", "|  TỐI MẬT  |", "TỐI  MẬT",
        unicodedata.normalize("NFD", "TUYỆT MẬT"),
        "Độ mật: Mật", "Độ mật: Tối mật", "Độ mật: Tuyệt mật", "ĐỘ MẬT: TUYỆT MẬT",
        "độ mật : mật", "Độ mật: Mật    Độ khẩn: Thường", "Độ mật: Mật.",
        "Số: 12/BC-CA        MẬT",  # a PDF line with the stamp in its own column
        "M Ậ T", "T Ố I  M Ậ T", "T U Y Ệ T   M Ậ T",
    ],
)
def test_markings(line: str) -> None:
    assert line_marking(line)


@pytest.mark.parametrize(
    "line",
    [
        "Mật", "mật", "Tối mật", "mật khẩu", "MẬT KHẨU", "Mật khẩu mới của bạn là",
        "bí mật", "BÍ MẬT", "bí mật nhà nước", "KẾ HOẠCH BẢO VỆ BÍ MẬT NHÀ NƯỚC",
        "mật ong", "MẬT ONG", "Mật ong rừng Thanh Sơn", "mật độ dân số", "Mật độ",
        "Độ mật: Thường", "Độ mật: Không", "ĐỘ MẬT: THƯỜNG",
        "tài liệu độ Tối mật, Mật phải được bảo quản", "Độ mật: Mật độ cao",
        "MẶT", "MẬT ONG   50.000đ", "", "M Ậ T  K H Ẩ U", "Mật ",
    ],
)
def test_not_markings(line: str) -> None:
    assert line_marking(line) == ""


def test_evidence_names_the_part() -> None:
    ev = find_markings("attachment a.zip > b.docx", ["Số: 1/BC", "MẬT", "nội dung"])
    assert [(e.part, e.signal, e.text) for e in ev] == [
        ("attachment a.zip > b.docx", "secret_marking", "MẬT")]


@pytest.mark.parametrize(
    ("lines", "found"),
    [
        (["Độ mật:", "Mật"], True),
        (["Độ mật", "Tối mật"], True),
        (["ĐỘ MẬT:", "", "TUYỆT MẬT"], True),
        (["Độ mật:", "Thường"], False),
        (["Mật"], False),
        (["Độ khẩn:", "Mật"], False),
        (["Độ mật:", "Thường", "Mật"], False),
    ],
)
def test_field_split_over_two_cells(lines: list[str], found: bool) -> None:
    assert bool(find_markings("body (html)", lines)) is found
