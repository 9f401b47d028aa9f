"""Encrypted, unreadable and ambiguous content facts from extraction defects."""

from policies.classifiers.defects import find_defects
from policies.extraction import Attachment, Defect, Extraction


def test_encrypted_unreadable_ambiguous() -> None:
    ex = Extraction(
        attachments=[Attachment("attachment a.zip", "a.zip", "application/zip", "zip", 5,
                                encrypted=True),
                     Attachment("attachment b.pdf", "b.pdf", "application/pdf", "pdf", 5,
                                unreadable=True)],
        defects=[Defect("message", "duplicate_content_type", "two headers", ambiguous=True),
                 Defect("attachment c.zip", "archive_bomb", "ratio 1000"),
                 Defect("attachment d.7z", "encrypted_archive", "7z archive is encrypted"),
                 Defect("message", "bare_lf")],
    )
    d = find_defects(ex)
    assert [e.part for e in d.encrypted] == ["attachment a.zip", "attachment d.7z"]
    assert [e.part for e in d.unreadable] == ["attachment b.pdf", "attachment c.zip"]
    assert [e.text for e in d.ambiguous] == ["duplicate_content_type: two headers"]


def test_clean_extraction_has_no_defect_facts() -> None:
    d = find_defects(Extraction(defects=[Defect("message", "bare_lf")]))
    assert not (d.encrypted or d.unreadable or d.ambiguous)
