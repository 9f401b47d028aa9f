"""Look-alike domains of internal and webmail domains: confusables, typing tricks."""

import pytest

from policies.classifiers.addresses import AddressClassifier
from policies.classifiers.lookalike import skeleton

C = AddressClassifier(["phutho.gov.vn"])


@pytest.mark.parametrize(
    ("address", "imitated"),
    [
        ("a@phutho-gov.vn", "phutho.gov.vn"),
        ("a@phuthogov.vn", "phutho.gov.vn"),
        ("a@phuth0.gov.vn", "phutho.gov.vn"),
        ("a@phutho.gov.vn.example.com", "phutho.gov.vn"),
        ("a@phuttho.gov.vn", "phutho.gov.vn"),
        ("a@phuth\u043e.gov.vn", "phutho.gov.vn"),  # Cyrillic о in an internal look-alike
        ("a@PHUTHO-GOV.VN.", "phutho.gov.vn"),
        ("a@gmaiI.com", "gmail.com"),          # capital I posing as l
        ("a@gmai1.com", "gmail.com"),          # digit one
        ("a@gm\u0430il.com", "gmail.com"),     # Cyrillic а
        ("a@xn--gmil-63d.com", "gmail.com"),   # the same, as punycode
        ("a@gmial.com", "gmail.com"),          # swapped letters
        ("a@rnail.ru", "mail.ru"),             # rn for m
        ("a@yah00.com", "yahoo.com"),
        ("a@h\u043etmail.com", "hotmail.com"),  # Cyrillic о
        ("a@gmail.com.vn", "gmail.com"),
        ("a@outlok.com", "outlook.com"),
    ],
)
def test_lookalikes(address: str, imitated: str) -> None:
    a = C.classify(address)
    assert a.lookalike_of == imitated
    assert "free_webmail" not in a.classes and "internal" not in a.classes


@pytest.mark.parametrize(
    "address",
    [
        "a@phutho.gov.vn", "a@lamthao.phutho.gov.vn", "a@gmail.com", "a@ymail.com",
        "a@vnpt.vn", "a@viettel.com.vn", "a@mic.gov.vn", "a@mod.gov.vn", "a@chinhphu.vn",
        "a@phuyen.gov.vn", "a@hive.com", "a@life.com", "a@bantinso.vn", "a@mail.google.com",
        "a@phutho.edu.vn",
    ],
)
def test_not_lookalikes(address: str) -> None:
    assert C.classify(address).lookalike_of == ""


def test_skeleton_uts39() -> None:
    assert skeleton("gm\u0430il.com") == skeleton("gmail.com")
    assert skeleton("paypaI.com") == skeleton("paypal.com")
    assert skeleton("ph\u1ee5tho") != skeleton("phutho")  # a Vietnamese letter is no confusable


def test_webmail_skeletons_are_shared_per_list_not_across_lists() -> None:
    from policies.classifiers.webmail import WebmailList

    a, b = AddressClassifier(["phutho.gov.vn"]), AddressClassifier(["other.gov.vn"])
    assert a.webmail.domains is b.webmail.domains
    a.classify("x@example.org")
    b.classify("x@example.org")
    assert a.lookalike._webmail_skeletons is b.lookalike._webmail_skeletons
    # A list of its own (an addition, a removal) gets tables of its own.
    added = AddressClassifier(["phutho.gov.vn"], WebmailList(add=["thu-mien-phi.example"]))
    assert added.classify("x@thu-mien-phi.example").classes == {"free_webmail"}
    assert added.classify("x@thu-mien-ph\u0456.example").lookalike_of == "thu-mien-phi.example"
    removed = AddressClassifier(["phutho.gov.vn"], WebmailList(remove=["gmail.com"]))
    assert "gmail.com" not in removed.webmail
    assert removed.lookalike._all_webmail_skeletons() is not a.lookalike._webmail_skeletons
