"""Vietnamese text normalisation: NFC/NFD, tone placement, dashes, spaces, case folding."""

import unicodedata

import pytest

from policies import text as text_module
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


def _reference(text: str) -> str:
    """normalize() without its shortcuts: translate, NFC, the tone shift on NFD, spaces."""
    text = unicodedata.normalize("NFC", text.translate(text_module._TABLE))
    shifted = text_module._TONE_SHIFT.sub(text_module._shift_tone, nfd(text))
    return text_module._SPACES.sub(" ", unicodedata.normalize("NFC", shifted)).strip()


@pytest.mark.parametrize(
    "line",
    [
        "hiệu quả, kết quả, quá trình, quà, quạ",  # u + toned a: no placement to move
        "thuý, Thuỳ, THUÝ, uỷ, UỶ ban", "hoà, HOÀ, khoẻ, KHOẺ, toà án, Hoè",
        "hoà\u0301 x", "hoàng hoạch hoặc",
        nfd("Cộng hoà xã hội; thuý"), "Độc lập – Tự do — Hạnh phúc", "M\u200bẬT", "Ðộ mật",
        "  Nơi\u00a0nhận:\t ", "Sở Tài chính đề nghị các đơn vị", "12.500.000", "TỔNG CỘNG",
        "o\u0300a", "oa\u0300", "oà\u0323", "uý\u0301", "Oẻ", "Uỵ",
    ],
)
def test_normalize_shortcuts_give_the_full_result(line: str) -> None:
    assert normalize(line) == _reference(line)


def test_normalize_of_ascii_lines_gives_the_full_result() -> None:
    # ASCII lines take the shortest way (a printable line with single inner spaces is
    # returned as it is); any white space or control character must still come out right.
    import random

    rng = random.Random(30)
    pieces = ["a", "Ban", "12.500", " ", "  ", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x00",
              "\n", "\r", "-", "x y"]
    for _ in range(3000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8)))
        assert normalize(line) == _reference(line), repr(line)
