"""Decree 30 official-document signals, per line and per document."""

import unicodedata

import pytest

from policies.classifiers import official
from policies.classifiers.official import document_signals, line_signals
from policies.text import normalize


def signals(line: str) -> set[int]:
    return line_signals(normalize(line))


LINE_CASES = [
    # 1: issuing body at the start, in capitals, alone or followed by a capital word
    ("UBND TỈNH PHÚ THỌ", {1}),
    ("ỦY BAN NHÂN DÂN", {1}),
    ("UỶ BAN NHÂN DÂN HUYỆN THANH BA", {1}),
    ("SỞ NÔNG NGHIỆP VÀ PTNT", {1}),
    ("BAN QUẢN LÝ CÁC KHU CÔNG NGHIỆP", {1}),
    ("TRƯỜNG THCS VĂN LANG", {1}),
    ("CHI CỤC THỦY LỢI", {1}),
    ("HĐND XÃ HY CƯƠNG", {1}),
    ("BỆNH VIỆN ĐA KHOA TỈNH", {1}),
    ("Sở Tài chính đề nghị các đơn vị", set()),
    ("UBND huyện đã chỉ đạo", set()),
    ("BANG KE CHI TIET", set()),
    ("VP HĐND và UBND huyện Lâm Thao", set()),  # a signature, not a header
    ("UBND TỈNH đề nghị các sở", set()),
    ("SỞ TÀI CHÍNH ----------", {1}),
    ("TRƯỜNG THCS SỐ 2 (DỰ THẢO)", {1}),
    # 2: motto, any case, old or new tone placement, any dash
    ("CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM", {2}),
    ("Cộng hòa xã hội chủ nghĩa Việt Nam", {2}),
    ("Độc lập – Tự do – Hạnh phúc", {2}),
    ("ĐỘC LẬP - TỰ DO - HẠNH PHÚC", {2}),
    # 3: number and symbol at the start of the line
    ("Số: 4279/UBND-KGVX", {3}),
    ("Số: 2445/QĐ-UBND", {3}),
    ("Số: 15/2024/TT-BTC", {3}),
    ("Số:      /QĐ-UBND", {3}),
    ("Số: ...../KH-UBND", {3}),
    ("Số: 77/TTr-SNV", {3}),
    ("Số: 12/2024/NQ-HĐND", {3}),
    ("SỐ: 08/BC-UBND", {3}),
    ("Số: 5", set()),
    ("Số: 5/2024", set()),
    ("Số: 12/tháng", set()),
    ("Căn cứ Quyết định số 2445/QĐ-UBND ngày 16/10/2018", set()),
    # 4: place and date anywhere in the line
    ("Phú Thọ, ngày 16 tháng 10 năm 2018", {4}),
    ("Lâm Thao, ngày    tháng    năm 2024", {4}),
    ("Việt Trì, ngày 05 tháng 3 năm 2025", {4}),
    ("ngày 16 tháng 10 năm 2018", set()),
    # 5: V/v at the start, or a line that is only a document type in capitals
    ("V/v tăng cường phòng chống dịch", {5}),
    ("V/v: triển khai chữ ký số", {5}),
    ("QUYẾT ĐỊNH", {5}),
    ("KẾ HOẠCH", {5}),
    ("GIẤY UỶ QUYỀN", {5}),
    ("Kế hoạch", set()),
    ("(V/v: giải quyết tình trạng ngập úng)", set()),  # a petition's subject in brackets
    ("Theo kế hoạch đã giao", set()),
    # 6: Nơi nhận at the start
    ("Nơi nhận:", {6}),
    ("Nơi nhận :", {6}),
    ("Đề nghị nơi nhận: ghi rõ", set()),
    # 7: signing authority anywhere, in capitals
    ("KT. CHỦ TỊCH", {7}),
    ("TM. ỦY BAN NHÂN DÂN", {7}),
    ("TL. GIÁM ĐỐC", {7}),
    ("Q. GIÁM ĐỐC", {7}),
    ("PHÓ GIÁM ĐỐC", {7}),
    ("HIỆU TRƯỞNG", {7}),
    ("TRƯỞNG TRẠM", {7}),
    ("CHÁNH VĂN PHÒNG", {7}),
    ("kt. chủ tịch", set()),
    ("KT.CHỦ TỊCH", {7}),
    ("T/M ỦY BAN NHÂN DÂN", {7}),
    ("K/T CHỦ TỊCH", {7}),
    ("CÔNG TY TNHH TM DV HÙNG CƯỜNG", set()),  # TM without a dot is "thương mại"
    ("TL. Giám đốc", set()),
    ("Q.1, TP. HỒ CHÍ MINH", set()),
    ("ý kiến của Giám đốc", set()),
    ("GIÁM ĐỐC.", {7}),
    ("CHỦ TỊCH :", {7}),
    ("(TUQ. CHÁNH VĂN PHÒNG)", {7}),
    ("K/T. CHỦ TỊCH", {7}),
    ("T/L GIÁM ĐỐC", {7}),
    ("Ông Nguyễn Văn A, GIÁM ĐỐC SỞ", {7}),
    ("XÃ HY CƯƠNG. TRƯỞNG THÔN", {7}),
    ("NGUYỄN VĂN TRUNG", set()),
    ("Tổ trưởng TM.", set()),
    ("1XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", set()),  # smtp-source's load lines
    ("Lorem ipsum dolor sit amet. Ut enim ad minim.", set()),
    # PDF: both header columns in one line
    ("UBND TỈNH PHÚ THỌ CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", {1, 2}),
    ("SỞ TÀI CHÍNH Độc lập - Tự do - Hạnh phúc", {1, 2}),
    ("ỦY BAN NHÂN DÂN Độc lập - Tự do - Hạnh phúc", {1, 2}),
    ("Số: 2156/STC-QLNS Phú Thọ, ngày 14 tháng 10 năm 2024", {3, 4}),
    ("Nơi nhận: KT. GIÁM ĐỐC", {6, 7}),
    ("| > Số: 12/QĐ-UBND", {3}),  # table bars and quote marks before the head
    ("V / v tăng cường", {5}),
    ("v/v: abc", {5}),
    ("nơi nhận:", {6}),
    ("NƠI NHẬN:", {6}),
    ("sỐ: 5/UBND", {3}),
    ("Tài liệu KT. GIÁM ĐỐC", {7}),
    ("Vụ việc", set()),
    ("Nhằm mục đích", set()),
    ("* QUYẾT ĐỊNH", {5}),
]


@pytest.mark.parametrize(("line", "expected"), LINE_CASES)
def test_line_signals(line: str, expected: set[int]) -> None:
    assert signals(line) == expected


@pytest.mark.parametrize(("line", "expected"), [c for c in LINE_CASES if c[1]])
def test_the_document_gate_lets_every_signal_line_through(line: str, expected: set[int]) -> None:
    # document_signals() skips line_signals() for a line that neither _may_signal() nor its
    # case-folded words (motto, date) let through.
    norm = normalize(line)
    low = norm.casefold()
    assert official._may_signal(norm) or any(
        w in low for w in ("việt nam", "hạnh phúc", "ngày"))
    assert document_signals("p", [line]).signals.keys() == expected


def test_every_signer_title_ends_in_a_capital() -> None:
    # _signing() skips lines that end with no title by an endswith() test resting on this.
    assert all(title[-1].isupper() for title in official._SIGNER_TITLES)


DOC = [
    "UBND TỈNH PHÚ THỌ",
    "SỞ KHOA HỌC VÀ CÔNG NGHỆ",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "Số: 311/SKHCN-QLKH",
    "Hà Nội, ngày 02 tháng 01 năm 2026",
    "V/v góp ý dự thảo",
    "Kính gửi: các đơn vị",
    "Nơi nhận:",
    "- Như trên;",
    "KT. GIÁM ĐỐC",
    "PHÓ GIÁM ĐỐC",
]


def test_a_full_document_is_official() -> None:
    d = document_signals("attachment cv.docx", DOC)
    assert d.count == 7 and d.is_official()
    ev = d.evidence()
    assert ev[0].part == "attachment cv.docx" and ev[0].signal == "issuing_body"
    assert {e.signal for e in ev} >= {"document_number", "place_date", "signing_authority"}


def test_document_quoted_in_a_reply_is_official() -> None:
    assert document_signals("body", [f"> {line}" for line in DOC]).count == 7


def test_nfd_document_is_official() -> None:
    d = document_signals("body", [unicodedata.normalize("NFD", line) for line in DOC])
    assert d.count == 7


def test_draft_with_blank_number_and_date() -> None:
    draft = ["UBND HUYỆN CẨM KHÊ", "Số:       /TTr-UBND", "Cẩm Khê, ngày    tháng    năm 2026",
             "TỜ TRÌNH", "Nơi nhận:", "TM. ỦY BAN NHÂN DÂN"]
    assert document_signals("x", draft).count == 6


@pytest.mark.parametrize(
    "lines",
    [
        # a citizen's petition: motto and place-date only
        ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "ĐƠN KIẾN NGHỊ",
         "Lâm Thao, ngày 3 tháng 11 năm 2024", "Kính gửi: UBND huyện Lâm Thao"],
        # a newsletter with an issue number
        ["BẢN TIN CÔNG NGHỆ SỐ", "Số: 5", "Tháng 10 năm 2024", "Sở Thông tin và Truyền thông"],
        # a reply quoting a decision inside a sentence
        ["Kính gửi ông Dũng,", "Theo Quyết định số 2445/QĐ-UBND ngày 16 tháng 10 năm 2018 "
         "của UBND tỉnh, hồ sơ của ông đã được giải quyết.", "Trân trọng."],
        # a data sheet
        ["TT", "Họ và tên", "Đơn vị", "1", "Nguyễn Văn A", "Sở Tài chính"],
    ],
)
def test_not_official(lines: list[str]) -> None:
    assert not document_signals("x", lines).is_official()


def test_signals_are_not_added_across_documents() -> None:
    first = ["UBND TỈNH PHÚ THỌ", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Số: 1/QĐ-UBND"]
    second = ["Phú Thọ, ngày 1 tháng 1 năm 2025", "QUYẾT ĐỊNH", "Nơi nhận:"]
    assert document_signals("a", first).count == 3
    assert document_signals("b", second).count == 3
    assert document_signals("a+b", first + second).is_official()


def test_wrapped_plain_text_date_and_motto() -> None:
    lines = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA", "VIỆT NAM", "Phú Thọ, ngày 16 tháng 10", "năm 2018"]
    assert set(document_signals("body", lines).signals) == {2, 4}


def test_threshold_is_a_parameter() -> None:
    d = document_signals("x", ["UBND TỈNH PHÚ THỌ", "Số: 1/QĐ-UBND", "QUYẾT ĐỊNH"])
    assert d.count == 3 and not d.is_official() and d.is_official(3)
