"""Classification speed: time per message (p50/p99) over the corpus, and for a 20 MB message.

    python bench/classify.py [--corpus DIR] [--rounds N] [--size-mb 20] [--small N]

What is timed is what the gateway runs during DATA: content extraction, the classifiers and the
policy evaluation (`Policy.classify` + `Policy.evaluate`), with the shipped policy and one
AddressClassifier built beforehand, as the gateway keeps them. The big message has ten
attachments (DOCX, XLSX, PDF, a ZIP holding a DOCX, and incompressible "photos"), generated
here. Peak memory: tracemalloc's peak for one classification of the big message (a separate,
untimed run) and the process's peak RSS. Targets (issue 3): p99 < 50 ms on the corpus,
< 2 s for the 20 MB message.

Small messages: CPU microseconds per message for a 10 KB plain-text message as Postfix's
smtp-source sends it (the gateway load benchmark's message) and a 10 KB plain-text letter in
Vietnamese prose, each classified `--small` times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
import zipfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import load_policy  # noqa: E402
from policies.extract import extract  # noqa: E402

HEADER = [
    "UBND TỈNH PHÚ THỌ", "SỞ TÀI CHÍNH", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc", "Số: 2156/STC-QLNS", "Phú Thọ, ngày 14 tháng 10 năm 2024",
    "V/v hướng dẫn xây dựng dự toán ngân sách năm 2025",
]
FILLER = ("Căn cứ Luật Ngân sách nhà nước, Sở Tài chính hướng dẫn các cơ quan, đơn vị xây dựng "
          "dự toán thu, chi ngân sách năm 2025 bảo đảm đúng quy định, tiết kiệm và hiệu quả. ")


def _docx(paragraphs: int) -> bytes:
    import docx

    d = docx.Document()
    for line in HEADER:
        d.add_paragraph(line)
    for i in range(paragraphs):
        d.add_paragraph(f"{i}. {FILLER * 3}")
    d.add_paragraph("Nơi nhận:")
    d.add_paragraph("KT. GIÁM ĐỐC")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _xlsx(rows: int) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["TT", "Đơn vị", "Dự toán", "Thực hiện", "Ghi chú"])
    for i in range(rows):
        ws.append([i, f"Xã {i}", i * 1000, i * 900, "bình thường"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _pdf(pages: int) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=10)
    for p in range(pages):
        pdf.add_page()
        for i in range(40):
            pdf.cell(0, 6, f"Page {p} line {i}: budget estimate report, data sheet",
                     new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def big_message(size_mb: float) -> bytes:
    """A message of about `size_mb` MB with ten attachments of mixed types."""
    rnd = random.Random(20)
    target = int(size_mb * 1024 * 1024 * 3 / 4)  # base64 grows the bytes by 4/3
    files: list[tuple[str, str, bytes]] = [
        ("du-toan-2025.docx", "application/vnd.openxmlformats-officedocument."
         "wordprocessingml.document", _docx(1500)),
        ("phu-luc.docx", "application/octet-stream", _docx(800)),
        ("so-lieu.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         _xlsx(20000)),
        ("bao-cao.pdf", "application/pdf", _pdf(200)),
    ]
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ho-so/to-trinh.docx", _docx(600))
        z.writestr("ho-so/ghi-chu.txt", FILLER * 500)
    files.append(("ho-so.zip", "application/zip", inner.getvalue()))
    used = sum(len(b) for _, _, b in files)
    photo = max(100_000, (target - used) // 5)
    for i in range(5):
        files.append((f"anh-{i}.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + rnd.randbytes(photo)))
    m = EmailMessage()
    m["From"] = "hungnv.stc@phutho.gov.vn"
    m["To"] = "hung.nguyenvan85@gmail.com"
    m["Subject"] = "Dự toán ngân sách 2025"
    m.set_content("Gửi anh tài liệu dự toán.\n")
    for name, ctype, blob in files:
        maintype, subtype = ctype.split("/", 1)
        m.add_attachment(blob, maintype=maintype, subtype=subtype, filename=name)
    return m.as_bytes()


def smtp_source_message(size: int = 10240) -> bytes:
    """What `smtp-source -l SIZE` sends: four header fields, then 78-character lines of a digit
    and X's (the last one a remainder), CRLF."""
    head = (b"From: <hungnv.stc@phutho.gov.vn>\r\nTo: <doitac@example.org>\r\n"
            b"Date: Thu, 26 Nov 2026 16:40:24 +0000 (UTC)\r\n"
            b"Message-Id: <2a6c.0003.0000@vm>\r\n\r\n")
    count = (size - 1) // 80
    lines = [b"1234567890"[i % 10:i % 10 + 1] + b"X" * 77 for i in range(count)]
    lines.append(b"X" * (size - 80 * count))
    return head + b"\r\n".join(lines) + b"\r\n"


def prose_message(size: int = 10240) -> bytes:
    """A plain-text letter in Vietnamese prose (no Decree 30 layout), about `size` bytes."""
    m = EmailMessage()
    m["From"] = "hungnv.stc@phutho.gov.vn"
    m["To"] = "doitac@example.org"
    m["Subject"] = "Trao đổi về dự toán"
    words = FILLER.split()
    rnd = random.Random(10)
    lines = ["Kính gửi anh chị,"]
    while sum(len(x.encode()) + 1 for x in lines) < size - 400:
        lines.append(" ".join(rnd.choice(words) for _ in range(14)))
    m.set_content("\n".join([*lines, "Trân trọng."]) + "\n", cte="8bit")
    return m.as_bytes(policy=SMTP)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=os.environ.get("MAILGW_CORPUS")
                    or str(ROOT / ".." / "shared" / "corpus"))
    ap.add_argument("--rounds", type=int, default=5, help="passes over the corpus")
    ap.add_argument("--size-mb", type=float, default=20.0)
    ap.add_argument("--small", type=int, default=300,
                    help="classifications of each 10 KB message (0: skip)")
    args = ap.parse_args()

    policy = load_policy(ROOT / "policies" / "phutho.toml")
    addresses = policy.address_classifier(["phutho.gov.vn"])
    # Build the look-alike tables once, as a long-running gateway has them.
    addresses.classify("warm@up.example")

    corpus = Path(args.corpus)
    labels_path = corpus / "labels.json"
    if labels_path.is_file():
        labels = json.loads(labels_path.read_text(encoding="utf-8"))
        msgs = [((corpus / x["file"]).read_bytes(), x["mail_from"], x["rcpt_to"]) for x in labels]
        times: list[float] = []
        cpu: list[float] = []
        own: list[float] = []  # classifiers + policy, without content extraction
        # One untimed pass loads the readers (pypdf, lxml, ...) as a running gateway has them.
        for raw, mail_from, rcpts in msgs:
            policy.evaluate(policy.classify(raw, mail_from, rcpts, addresses=addresses))
        for _ in range(args.rounds):
            for raw, mail_from, rcpts in msgs:
                t0, c0 = time.perf_counter(), time.process_time()
                extraction = extract(raw)
                t1 = time.perf_counter()
                policy.evaluate(policy.facts_from_extraction(
                    extraction, mail_from, rcpts, addresses=addresses, size=len(raw)))
                t2 = time.perf_counter()
                times.append((t2 - t0) * 1000)
                own.append((t2 - t1) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
        print(f"corpus: {len(msgs)} messages x {args.rounds} rounds: "
              f"p50 {pct(times, 50):.1f} ms, p99 {pct(times, 99):.1f} ms, "
              f"max {max(times):.1f} ms, mean {statistics.mean(times):.1f} ms "
              f"(target p99 < 50 ms); CPU time p50 {pct(cpu, 50):.1f} ms, "
              f"p99 {pct(cpu, 99):.1f} ms; classifiers and policy alone p50 "
              f"{pct(own, 50):.2f} ms, p99 {pct(own, 99):.2f} ms")
    else:
        print(f"corpus: not found at {corpus} (skipped)")

    for name, small in (("smtp-source 10 KB plain text", smtp_source_message()),
                        ("10 KB Vietnamese prose", prose_message())):
        if args.small <= 0:
            break
        mail_from, rcpts = "hungnv.stc@phutho.gov.vn", ["doitac@example.org"]
        policy.evaluate(policy.classify(small, mail_from, rcpts, addresses=addresses))
        c0 = time.process_time()
        for _ in range(args.small):
            extraction = extract(small)
        c1 = time.process_time()
        for _ in range(args.small):
            policy.evaluate(policy.facts_from_extraction(
                extraction, mail_from, rcpts, addresses=addresses, size=len(small)))
        c2 = time.process_time()
        per = 1e6 / args.small
        print(f"small message, {name} ({len(small)} bytes): CPU "
              f"{(c2 - c0) * per:.0f} us per message, of which extraction "
              f"{(c1 - c0) * per:.0f} us, classifiers and policy {(c2 - c1) * per:.0f} us "
              f"({args.small} runs)")

    t0 = time.perf_counter()
    raw = big_message(args.size_mb)
    gen = time.perf_counter() - t0
    mail_from, rcpts = "hungnv.stc@phutho.gov.vn", ["hung.nguyenvan85@gmail.com"]
    runs, extract_runs, cpu_runs = [], [], []
    verdict = None
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        extraction = extract(raw)
        t1, c1 = time.perf_counter(), time.process_time()
        facts = policy.facts_from_extraction(extraction, mail_from, rcpts, addresses=addresses,
                                             size=len(raw))
        verdict = policy.evaluate(facts)
        t2, c2 = time.perf_counter(), time.process_time()
        runs.append(t2 - t0)
        extract_runs.append(t1 - t0)
        cpu_runs.append((c2 - c0, c1 - c0))
    assert verdict is not None
    lines = sum(len(d.lines) for d in extraction.documents)
    print(f"big message: {len(raw) / 1024 / 1024:.1f} MB, 10 attachments, {lines} text lines "
          f"(generated in {gen:.1f} s): best {min(runs):.2f} s, worst {max(runs):.2f} s of 3 "
          f"(target < 2 s), of which extraction {min(extract_runs):.2f} s; "
          f"verdict {verdict.action} {list(verdict.reasons)}")
    best_cpu = min(cpu_runs)
    print(f"big message CPU time: {best_cpu[0]:.2f} s, of which extraction {best_cpu[1]:.2f} s, "
          f"classifiers and policy {best_cpu[0] - best_cpu[1]:.2f} s (a busy machine inflates "
          "wall-clock time, far less CPU time)")

    tracemalloc.start()
    policy.evaluate(policy.classify(raw, mail_from, rcpts, addresses=addresses))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"memory: tracemalloc peak during one big classification {peak / 1024 / 1024:.0f} MB "
          f"(message {len(raw) / 1024 / 1024:.0f} MB); process peak RSS {rss:.0f} MB")
    # A busy machine slows every figure above; the load average makes such runs recognisable.
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
