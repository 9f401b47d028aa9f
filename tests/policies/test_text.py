"""Vietnamese text normalisation: NFC/NFD, tone placement, dashes, spaces, case folding."""

import unicodedata

import pytest

from policies.text import display, fold, is_upper_word, normalize


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HOÀ", "HÒA"),
        ("UỶ BAN", "ỦY BAN"),
        ("hoà bình", "hòa bình"),
        ("thuý", "thúy"),
        ("khoẻ", "khỏe"),
        ("Quý", "Qúy"),
        (nfd("CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM"), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
        (nfd("Uỷ ban nhân dân"), "Ủy ban nhân dân"),
        ("Độc lập – Tự do — Hạnh phúc", "Độc lập - Tự do - Hạnh phúc"),
        ("Độc lập ‑ Tự do ‒ Hạnh phúc", "Độc lập - Tự do - Hạnh phúc"),
        ("Số:\t\t 12/QĐ-UBND", "Số: 12/QĐ-UBND"),
        ("  Nơi\u00a0nhận:  ", "Nơi nhận:"),
        ("M\u200bẬT", "MẬT"),
        ("Ðộ mật", "Độ mật"),  # legacy-font eth for Đ
    ],
)
def test_same_after_normalize(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("hoạch", "họach"),  # a final consonant: no style moves the tone, nothing to merge
        ("mật", "mặt"),
        ("MẬT", "MẶT"),
        ("hòa", "hỏa"),
    ],
)
def test_different_stay_different(a: str, b: str) -> None:
    assert normalize(a) != normalize(b)


def test_words_with_final_consonant_unchanged() -> None:
    for word in ("KẾ HOẠCH", "hoàng", "thuyết", "hoặc", "khuyến", "ngoài"):
        assert normalize(word) == unicodedata.normalize("NFC", word)


def test_fold_keeps_vietnamese_letters() -> None:
    assert fold("ĐỘ MẬT: TUYỆT MẬT") == "độ mật: tuyệt mật"
    assert fold(nfd("CỘNG HOÀ")) == "cộng hòa"


def test_lines_are_kept() -> None:
    assert normalize("a  b\nc\t d") == "a b\nc d"


def test_display_keeps_tone_placement() -> None:
    assert display(nfd("HOÀ   BÌNH")) == "HOÀ BÌNH"


@pytest.mark.parametrize(
    ("word", "upper"),
    [("TỈNH", True), ("HĐND", True), ("Tỉnh", False), ("123", False), ("QĐ-UBND", True)],
)
def test_is_upper_word(word: str, upper: bool) -> None:
    assert is_upper_word(word) is upper
