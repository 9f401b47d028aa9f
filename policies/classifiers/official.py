"""Official document (Decree 30/2020/NĐ-CP layout): signals counted per document, line by line.

A document is official when it shows at least `min_signals` (4) of the seven layout signals:

1. issuing body     a line beginning with a state body's name in capitals (`UBND TỈNH PHÚ THỌ`,
                    `SỞ TÀI CHÍNH`, `ỦY BAN NHÂN DÂN`), then another word in capitals or alone;
2. national motto   `CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM` and/or `Độc lập - Tự do - Hạnh phúc`,
                    in any letter case;
3. number, symbol   a line beginning `Số:` + number (blank in a draft) + `/` + optional year `/` +
                    a symbol of abbreviations (`4279/UBND-KGVX`, `15/2024/TT-BTC`, `  /QĐ-UBND`);
4. place and date   `<place>, ngày D tháng M năm YYYY` (day and month may be blank);
5. subject or type  a line beginning `V/v`, or a line that is only a document type in capitals;
6. recipients       a line beginning `Nơi nhận:`;
7. signing          `KT.`/`TM.`/`TL.`/`TUQ.`/`Q.` + a title in capitals, or a line ending with a
                    signer's title in capitals (`CHỦ TỊCH`, `PHÓ GIÁM ĐỐC`, `HIỆU TRƯỞNG`).

Signals 1, 3, 5, 6 are tested at the start of a line, 2, 4, 7 anywhere in it (a PDF often gives
both header columns as one line). Letter case matters where the decree writes capitals: "Sở Tài
chính đề nghị ..." in a sentence is no header. Lines are compared after `policies.text.normalize`.
Signals 2 and 4 are also looked for across two neighbouring lines, for plain-text bodies wrapped
at a fixed width; no signal is ever added up across two documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from policies.evidence import Evidence
from policies.text import display, is_upper_word, normalize

MIN_SIGNALS = 4

SIGNAL_NAMES = {
    1: "issuing_body",
    2: "national_motto",
    3: "document_number",
    4: "place_date",
    5: "subject_or_type",
    6: "recipients_block",
    7: "signing_authority",
}

# Names of state bodies that open the issuing-body line (signal 1). Longer names first so
# `ỦY BAN NHÂN DÂN` wins over `BAN`; all are compared in capitals, as written in a header.
_BODIES = sorted(
    {
        normalize(b)
        for b in (
            "UBND", "ỦY BAN NHÂN DÂN", "UỶ BAN NHÂN DÂN", "HĐND", "HỘI ĐỒNG NHÂN DÂN", "SỞ",
            "VĂN PHÒNG", "BAN", "THANH TRA", "TRUNG TÂM", "CHI CỤC", "CỤC", "TỔNG CỤC", "BỘ",
            "TRƯỜNG", "TRẠM", "PHÒNG", "CÔNG AN", "TỈNH ỦY", "HUYỆN ỦY", "THÀNH ỦY", "THỊ ỦY",
            "ĐẢNG ỦY", "ĐẢNG BỘ", "CHI BỘ", "BỆNH VIỆN", "VIỆN", "HỌC VIỆN", "KHO BẠC",
            "BẢO HIỂM XÃ HỘI", "NGÂN HÀNG NHÀ NƯỚC", "TÒA ÁN", "TOÀ ÁN", "ĐÀI", "CHI NHÁNH",
            "BỘ CHỈ HUY", "BAN CHỈ HUY", "BAN CHỈ ĐẠO", "BAN QUẢN LÝ", "CHÍNH PHỦ", "QUỐC HỘI",
            "THỦ TƯỚNG", "MẶT TRẬN", "ỦY BAN MẶT TRẬN", "UBMTTQ", "LIÊN ĐOÀN", "ĐOÀN", "HỘI",
            "HỘI ĐỒNG", "TAND", "VKSND", "ĐẠI HỌC", "QUỸ", "BAN TUYÊN GIÁO", "KIỂM TOÁN",
            "BQL", "VP", "BCH", "BCĐ", "TỈNH ĐOÀN", "HUYỆN ĐOÀN", "THÀNH ĐOÀN", "BẢO TÀNG",
            "THƯ VIỆN", "TRẠI", "ĐỒN", "HẠT", "QUÂN KHU", "VƯỜN QUỐC GIA", "KIỂM TOÁN NHÀ NƯỚC",
            "BAN THƯỜNG VỤ", "THƯỜNG TRỰC", "NHÀ VĂN HÓA", "NHÀ THIẾU NHI",
        )
    },
    key=len,
    reverse=True,
)

# Document types that make up a whole line (signal 5), as Decree 30 (Appendix III) names them.
_DOC_TYPES = {
    normalize(t)
    for t in (
        "QUYẾT ĐỊNH", "KẾ HOẠCH", "BÁO CÁO", "THÔNG BÁO", "TỜ TRÌNH", "CHỈ THỊ", "CÔNG ĐIỆN",
        "GIẤY MỜI", "BIÊN BẢN", "HƯỚNG DẪN", "NGHỊ QUYẾT", "QUY CHẾ", "QUY ĐỊNH", "CHƯƠNG TRÌNH",
        "PHƯƠNG ÁN", "ĐỀ ÁN", "DỰ ÁN", "GIẤY GIỚI THIỆU", "GIẤY ỦY QUYỀN", "GIẤY UỶ QUYỀN",
        "THÔNG CÁO", "CÔNG VĂN", "HỢP ĐỒNG", "BẢN GHI NHỚ", "BẢN THỎA THUẬN", "BẢN THOẢ THUẬN",
        "GIẤY NGHỈ PHÉP", "PHIẾU GỬI", "PHIẾU CHUYỂN", "PHIẾU BÁO", "THƯ CÔNG", "NGHỊ ĐỊNH",
        "THÔNG TƯ", "THÔNG TƯ LIÊN TỊCH", "LUẬT", "PHÁP LỆNH", "ĐIỀU LỆ", "KẾT LUẬN",
        "CHỈ THỊ", "ĐỀ CƯƠNG", "DỰ THẢO", "TỜ TRÌNH DỰ THẢO",
    )
}

_SIGNER_TITLES = [
    normalize(t)
    for t in (
        "CHỦ TỊCH", "GIÁM ĐỐC", "CHÁNH VĂN PHÒNG", "CHÁNH THANH TRA", "CHÁNH ÁN",
        "BÍ THƯ", "THỦ TƯỚNG", "THỦ TRƯỞNG", "TỔNG GIÁM ĐỐC", "TỔNG CỤC TRƯỞNG", "CỤC TRƯỞNG",
        "CHI CỤC TRƯỞNG", "BỘ TRƯỞNG", "THỨ TRƯỞNG", "VIỆN TRƯỞNG", "HIỆU TRƯỞNG",
        "CHỈ HUY TRƯỞNG", "TRƯỞNG BAN", "TRƯỞNG PHÒNG", "TRƯỞNG TRẠM", "TRƯỞNG ĐOÀN",
        "TRƯỞNG KHOA", "TRƯỞNG CÔNG AN", "TRƯỞNG ĐÀI", "TRƯỞNG CHI NHÁNH", "GIÁM ĐỐC SỞ",
        "KẾ TOÁN TRƯỞNG", "TRƯỞNG TRUNG TÂM", "TRƯỞNG BAN QUẢN LÝ", "TRƯỞNG THÔN",
    )
]

_BLANK = r"[ ._…\-]*"
_NUMBER = rf"(?:\d[\d.,]*[a-zA-Z]?|{_BLANK})"
# One abbreviation of a symbol starts with a capital; `TTr` (tờ trình) has small letters.
_ABBR = r"[A-ZĐ][A-Za-zĐđ0-9&]*"
_SYMBOL = rf"{_ABBR}(?:\s?-\s?{_ABBR})*"
_NUMBER_LINE = re.compile(
    rf"^(?i:số)\s*:\s*{_NUMBER}\s*/\s*(?:(?:19|20)\d\d\s*/\s*)?(?P<sym>{_SYMBOL})(?=$|[\s,;.)])"
)
_MOTTO = re.compile(
    r"cộng\s*hòa\s+xã\s+hội\s+chủ\s+nghĩa\s+việt\s+nam|độc\s+lập\s*-?\s*tự\s+do\s*-?\s*hạnh\s+phúc"
)
_PLACE_DATE = re.compile(
    rf"[^\W\d_][^,]{{0,40}},\s*ngày\s*(?:\d{{1,2}}|{_BLANK})\s*tháng\s*(?:\d{{1,2}}|{_BLANK})"
    rf"\s*năm\s*(?:\d{{4}}|\d{{2}}{_BLANK})"
)
_SUBJECT = re.compile(r"^V\s?/\s?V\b", re.IGNORECASE)
_RECIPIENTS = re.compile(r"^nơi\s*nhận\s*:", re.IGNORECASE)
# `T/M`, `K/T`, `T/L` are the older spellings of `TM.`, `KT.`, `TL.` still seen in templates.
_SIGN_PREFIX = re.compile(
    r"(?:^|[\s(\[])(?:(?:KT|TM|TL|TUQ|Q)\s?\.|(?:K/T|T/M|T/L)\.?)\s*(?P<title>\S+)"
)
_ENDS_WITH_TITLE = re.compile(
    r"(?:^|\s)(?:PHÓ\s+)?(?:" + "|".join(re.escape(t) for t in _SIGNER_TITLES) + r")\s*[.:]?$"
)
# Leading decorations a header line may carry in extracted text (bullets, quotes, table bars).
# Only table bars, bullets, emphasis and e-mail quote marks (`> ` of a document forwarded in
# the body): a bracket or a dash before `V/v` or `Số:` means the line does not begin with it
# (a petition's "(V/v: ...)" is no subject line).
_LEAD_CHARS = " |*•>"
_LEAD = re.compile(r"^[\s|*•>]+")


@dataclass(frozen=True)
class DocumentSignals:
    """The signals found in one document, with the first line showing each."""

    part: str
    signals: dict[int, str]

    @property
    def count(self) -> int:
        return len(self.signals)

    def is_official(self, min_signals: int = MIN_SIGNALS) -> bool:
        return self.count >= min_signals

    def evidence(self) -> list[Evidence]:
        return [Evidence.of(self.part, SIGNAL_NAMES[n], text)
                for n, text in sorted(self.signals.items())]


_BODY_LINE = re.compile(
    "^(?:" + "|".join(re.escape(b) for b in _BODIES) + r")(?=$|\s)(?P<rest>.*)$"
)
# What may follow the name of the body on a header line: the right-hand column of a PDF
# header read into the same line (the motto), or the number line.
_AFTER_HEADER = ("cộng hòa", "độc lập", "số")


_BODY_FIRST_WORDS = frozenset(b.split()[0] for b in _BODIES)


def _issuing_body(line: str) -> bool:
    """A header line: the body's name, then words in capitals up to the end of the line or up
    to the right-hand column (`SỞ TÀI CHÍNH Độc lập - Tự do - Hạnh phúc`). A signature such as
    `VP HĐND và UBND huyện Lâm Thao` or a sentence `UBND TỈNH đề nghị ...` is no header."""
    if line.split(" ", 1)[0] not in _BODY_FIRST_WORDS:
        return False
    m = _BODY_LINE.match(line)
    if not m:
        return False
    words = m.group("rest").split()
    for i, word in enumerate(words):
        if not any(c.isalpha() for c in word) or is_upper_word(word.strip(",.:;()")):
            continue
        rest = " ".join(words[i:]).casefold()
        return rest.startswith(_AFTER_HEADER)
    return True


def _doc_type(line: str) -> bool:
    return line.rstrip(" .:") in _DOC_TYPES


# Every title ends in a capital letter, so a line that ends (after spaces, dots and colons) with
# none of them cannot match _ENDS_WITH_TITLE: _ends_with_title() spares the regex most lines,
# and its last-letter test spares most of them the endswith() over every title.
_TITLE_ENDINGS = tuple(_SIGNER_TITLES)
_TITLE_LAST_LETTERS = frozenset(title[-1] for title in _SIGNER_TITLES)


def _ends_with_title(line: str) -> bool:
    tail = line.rstrip(" .:")
    return tail[-1:] in _TITLE_LAST_LETTERS and tail.endswith(_TITLE_ENDINGS)


def _signing(line: str) -> bool:
    # Every prefix has a dot or a slash, and a T or a Q (KT. TM. TL. TUQ. Q. K/T T/M T/L).
    if ("." in line or "/" in line) and ("T" in line or "Q" in line):
        for m in _SIGN_PREFIX.finditer(line):
            if is_upper_word(m.group("title")) and len(m.group("title")) >= 2:
                return True
    return _ends_with_title(line) and bool(_ENDS_WITH_TITLE.search(line))


def line_signals(line: str, low: str | None = None) -> set[int]:
    """The signals one normalised line shows (exposed for the tests).

    Each test starts with a plain substring or character check, so that the many ordinary lines
    of a large spreadsheet or report cost little.
    """
    found: set[int] = set()
    head = _LEAD.sub("", line) if line[:1] in _LEAD_CHARS else line
    if low is None:
        low = line.casefold()
    first = head[:1]
    upper = first.isupper()
    if upper and _issuing_body(head):
        found.add(1)
    if ("việt nam" in low or "hạnh phúc" in low) and _MOTTO.search(low):
        found.add(2)
    if first in "sS" and _NUMBER_LINE.match(head):
        found.add(3)
    if "ngày" in low and "năm" in low and _PLACE_DATE.search(low):
        found.add(4)
    if (first in "vV" and _SUBJECT.match(head)) or (upper and _doc_type(head)):
        found.add(5)
    if first in "nN" and _RECIPIENTS.match(head):
        found.add(6)
    if _signing(line):
        found.add(7)
    return found


# The first two characters of `Số:` (3), `V/v` (5) and `Nơi nhận:` (6) as their regexes
# accept them (the second one in either case; for `V/v` a slash or a space).
_NUMBER_SECOND = frozenset("ốỐ")
_RECIPIENTS_SECOND = frozenset("ơƠ")


def _may_signal(line: str) -> bool:
    """False when line_signals() would find nothing in `line` by the tests that look at the
    line itself; the case-folded words (motto, date) are looked for by the caller.

    The same conditions line_signals() and its helpers start with, in the cheapest form, so
    that most lines of a long document or body stop after a few character tests.
    """
    first = line[0]
    if first in _LEAD_CHARS:
        return True  # the head starts after the decorations: let line_signals() find it
    second = line[1:2]
    if (first in "sS" and second in _NUMBER_SECOND) or (
        first in "nN" and second in _RECIPIENTS_SECOND
    ) or (first in "vV" and (second == "/" or second.isspace())):
        return True  # 3, 6, 5 (V/v)
    # 1 and 5 (a document type) on a line that starts with a capital: the head is the line.
    if first.isupper() and (
        line.split(" ", 1)[0] in _BODY_FIRST_WORDS or line.rstrip(" .:") in _DOC_TYPES
    ):
        return True
    # 7: a signing prefix (a dot or a slash, and a piece of KT. TM. TL. TUQ. Q. K/T T/M T/L),
    # or a title ending the line.
    if ("." in line or "/" in line) and ("Q" in line or _has_t_prefix_piece(line)):
        return True
    return _ends_with_title(line)


def _has_t_prefix_piece(line: str) -> bool:
    return "T" in line and (
        "KT" in line or "TM" in line or "TL" in line or "TU" in line or "/T" in line
        or "T/" in line
    )


def document_signals(
    part: str, lines: Sequence[str], normalized: Sequence[str] | None = None
) -> DocumentSignals:
    """Count the Decree 30 signals of one document's lines.

    `normalized` may hold the lines already passed through `normalize` (the caller shares them
    between classifiers); evidence quotes the original line.
    """
    norm = normalized if normalized is not None else [normalize(x) for x in lines]
    signals: dict[int, str] = {}
    # The previous non-empty line (normalised and as written), and whether its case-folded
    # form has a word of the motto's first half or "ngày" (the only ones a join looks for).
    prev = previous_raw = ""
    prev_motto = prev_day = False
    for raw, line in zip(lines, norm, strict=True):
        if not line:
            continue
        if line.isascii():
            # Every word looked for in the case-folded line has a Vietnamese letter.
            low = ""
            motto = day = words = False
        else:
            low = line.casefold()
            motto = "cộng hòa" in low or "độc lập" in low
            day = "ngày" in low
            words = day or "việt nam" in low or "hạnh phúc" in low
        if words or _may_signal(line):
            for n in line_signals(line, low or line.casefold()):
                if n not in signals:
                    signals[n] = display(raw)
            if len(signals) == len(SIGNAL_NAMES):
                break
        # A wrapped plain-text line: the motto or the date may straddle the break. Only pairs
        # with a word of either are joined (most lines of a large document have none).
        if prev and 2 not in signals and prev_motto:
            joined = f"{prev.casefold()} {low or line.casefold()}"
            if _MOTTO.search(joined):
                signals[2] = display(f"{previous_raw} {raw}")
        if prev and 4 not in signals and (prev_day or day):
            joined = f"{prev.casefold()} {low or line.casefold()}"
            if "năm" in joined and _PLACE_DATE.search(joined):
                signals[4] = display(f"{previous_raw} {raw}")
        prev, previous_raw, prev_motto, prev_day = line, raw, motto, day
    return DocumentSignals(part, signals)
