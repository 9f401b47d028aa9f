"""Text to lines (policies.extract.text.to_lines): line breaks, control characters, limits."""

import pytest

from policies.extract.text import to_lines


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("a\r\nb\nc\rd", ["a", "b", "c", "d"]),
        ("a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i", list("abcdefghi")),
        ("\n\n  a  \n\t\n \u00a0\nb\t \r\n", ["  a", "b"]),  # blank lines go, leading space stays
        ("M\u200bẬ\u200dT\ufeff", ["MẬT"]),  # zero-width characters that split a word
        ("a\x00b\x07c\x1fd\x7fe\x9ff", ["abcdef"]),
        ("a\x00b\x07c\x1fd\x7fe\r\nx\x1by", ["abcde", "xy"]),  # ASCII only
        ("Lorem ipsum.\r\n\r\nDolor\tsit amet.\r\n", ["Lorem ipsum.", "Dolor\tsit amet."]),
        ("\x1b[1mĐộ mật\x1b[0m: Mật", ["[1mĐộ mật[0m: Mật"]),
        ("a\tb", ["a\tb"]),  # tabs stay (normalisation collapses them later)
        ("", []),
        ("\u200b\n\x00", []),
    ],
)
def test_to_lines(text: str, lines: list[str]) -> None:
    assert to_lines(text) == lines


def test_to_lines_limit() -> None:
    text = "\n".join(f"dòng {i}" for i in range(10))
    assert to_lines(text, 3) == ["dòng 0", "dòng 1", "dòng 2"]
    assert to_lines("\n\nx\n\ny\nz", 2) == ["x", "y"]
