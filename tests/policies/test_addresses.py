"""Address classes from envelope addresses: internal, government, free webmail, other."""

import pytest

from policies.classifiers.addresses import AddressClassifier, split_address
from policies.classifiers.webmail import WebmailList

C = AddressClassifier(["phutho.gov.vn"])


@pytest.mark.parametrize(
    ("address", "classes"),
    [
        ("vanthu@phutho.gov.vn", {"internal", "government"}),
        ("a@lamthao.phutho.gov.vn", {"internal", "government"}),
        ("a@x.y.lamthao.phutho.gov.vn", {"internal", "government"}),
        ("A@PHUTHO.GOV.VN.", {"internal", "government"}),
        (" <a@Phutho.Gov.Vn> ", {"internal", "government"}),
        ("a@xphutho.gov.vn", {"government"}),  # whole labels only: not internal
        ("a@phutho.gov.vn.example.com", {"other"}),
        ("a@mod.gov.vn", {"government"}),
        ("a@chinhphu.vn", {"government"}),
        ("a@vpcp.chinhphu.vn", {"government"}),
        ("a@xchinhphu.vn", {"other"}),
        ("a@gmail.com", {"free_webmail"}),
        ("Someone@GMAIL.COM.", {"free_webmail"}),
        ("user+tag@gmail.com", {"free_webmail"}),
        ("a@googlemail.com", {"free_webmail"}),
        ("a@yahoo.com.vn", {"free_webmail"}),
        ("a@outlook.com.vn", {"free_webmail"}),
        ("a@vnn.vn", {"free_webmail"}),
        ("a@mail.gmail.com", {"other"}),  # a subdomain of a listed domain is not webmail
        ("a@gmaiI.com", {"other"}),       # a look-alike is not webmail
        ("a@vnpt.vn", {"other"}),
        ("a@viettel.com.vn", {"other"}),
        ("", {"other"}),                  # the null sender
        ('"boss@phutho.gov.vn" <x@gmail.com>', {"free_webmail"}),  # a display name is a name
        ("boss@phutho.gov.vn <x@gmail.com>", {"free_webmail"}),
        ("<@relay.example:a@gmail.com>", {"free_webmail"}),  # source route dropped
        ("a@GMAİL.com", {"other"}),
    ],
)
def test_classes(address: str, classes: set[str]) -> None:
    assert set(C.classify(address).classes) == classes


def test_subaddress_removed_for_matching() -> None:
    a = C.classify("HuyBQ+CongViec@Gmail.com")
    assert a.address == "huybq@gmail.com"


@pytest.mark.parametrize(
    ("unicode_form", "other_form"),
    [
        ("a@đànẵng.vn", "a@ĐÀNẴNG.VN"),
        ("a@phúthọ.vn", "a@PHÚTHỌ.vn."),
        ("a@phúthọ.vn", "a@" + "phúthọ.vn".encode("idna").decode("ascii")),
    ],
)
def test_idn_normalised_by_uts46(unicode_form: str, other_form: str) -> None:
    a, b = C.classify(unicode_form), C.classify(other_form)
    assert a.domain == b.domain and a.domain.startswith("xn--") and a.domain.isascii()
    assert a.domain_unicode == unicode_form.split("@")[1]


def test_unicode_and_punycode_internal_domain_are_one() -> None:
    c = AddressClassifier(["sởtưpháp.vn"])
    puny = "sởtưpháp.vn".encode("idna").decode("ascii")
    assert "internal" in c.classify(f"a@{puny}").classes
    assert "internal" in c.classify("a@x.SỞTƯPHÁP.VN").classes


def test_policy_additions_and_removals() -> None:
    c = AddressClassifier(["phutho.gov.vn"], WebmailList(add=["Mail.Example.VN"],
                                                         remove=["gmail.com"]))
    assert c.classify("a@mail.example.vn").classes == {"free_webmail"}
    assert c.classify("a@gmail.com").classes == {"other"}


def test_split_address_null_sender() -> None:
    assert split_address("<>") == ("", "")


def test_repeated_addresses_come_from_a_bounded_cache() -> None:
    c = AddressClassifier(["phutho.gov.vn"])
    first = c.classify("Doitac@Example.ORG.")
    assert c.classify("Doitac@Example.ORG.") is first
    assert c.classify("doitac@example.org") == AddressClassifier(["phutho.gov.vn"]).classify(
        "doitac@example.org")
    for i in range(AddressClassifier.CACHE_SIZE + 10):
        c.classify(f"a{i}@example.org")
    assert len(c._seen) <= AddressClassifier.CACHE_SIZE
    assert c.classify("a@phuth0.gov.vn").lookalike_of == "phutho.gov.vn"
