"""Rule conditions over Facts, table-driven: every test a condition can make."""

import pytest

from policies import AddressClassifier, build_facts
from policies.extraction import Document, Extraction
from policies.rules import Condition

AC = AddressClassifier(["phutho.gov.vn"])


def facts(mail_from="a@phutho.gov.vn", rcpts=("b@gmail.com",), direction=None, unit=None,
          size=1000, marking=False):
    docs = [Document("body", "text", ("MẬT",))] if marking else []
    return build_facts(Extraction(documents=docs), mail_from, list(rcpts), addresses=AC,
                       direction=direction, sender_unit=unit, size=size)


@pytest.mark.parametrize(
    ("cond", "f", "matches"),
    [
        (Condition(), facts(), True),
        (Condition(direction=frozenset({"outbound"})), facts(), True),
        (Condition(direction=frozenset({"inbound"})), facts(), False),
        (Condition(direction=frozenset({"inbound"})), facts(direction="inbound"), True),
        (Condition(sender_class=frozenset({"internal"})), facts(), True),
        (Condition(sender_class=frozenset({"government"})), facts(), True),
        (Condition(sender_class=frozenset({"free_webmail"})), facts(), False),
        (Condition(sender_address=frozenset({"phutho.gov.vn"})),
         facts("x@lamthao.phutho.gov.vn"), True),
        (Condition(sender_address=frozenset({"a@phutho.gov.vn"})), facts("A+tag@PHUTHO.GOV.VN"),
         True),
        (Condition(sender_address=frozenset({"a@phutho.gov.vn"})), facts("b@phutho.gov.vn"),
         False),
        (Condition(sender_unit=frozenset({"stttt"})), facts(unit="STTTT"), True),
        (Condition(sender_unit=frozenset({"stttt"})), facts(unit="snv"), False),
        (Condition(sender_unit=frozenset({"stttt"})), facts(), False),
        (Condition(recipients_any=frozenset({"free_webmail"})),
         facts(rcpts=("c@phutho.gov.vn", "d@yahoo.com")), True),
        (Condition(recipients_all=frozenset({"free_webmail"})),
         facts(rcpts=("c@phutho.gov.vn", "d@yahoo.com")), False),
        (Condition(recipients_all=frozenset({"internal", "free_webmail"})),
         facts(rcpts=("c@phutho.gov.vn", "d@yahoo.com")), True),
        (Condition(recipients_any=frozenset({"other"})), facts(rcpts=("x@vnpt.vn",)), True),
        (Condition(recipient_address=frozenset({"gmail.com"})), facts(), True),
        (Condition(facts=(("secret_marking", True),)), facts(marking=True), True),
        (Condition(facts=(("secret_marking", True),)), facts(), False),
        (Condition(facts=(("secret_marking", False),)), facts(), True),
        (Condition(size_over=999), facts(size=1000), True),
        (Condition(size_over=1000), facts(size=1000), False),
        (Condition(size_under=1001), facts(size=1000), True),
        (Condition(size_under=1000), facts(size=1000), False),
        # A display-name trick in the envelope changes nothing: the address is in <>.
        (Condition(sender_class=frozenset({"internal"})),
         facts('"vanthu@phutho.gov.vn" <x@gmail.com>'), False),
        # A quoted local part holding an @ is only a local part.
        (Condition(recipients_any=frozenset({"internal"})),
         facts(rcpts=('"boss@phutho.gov.vn"@gmail.com',)), False),
    ],
)
def test_condition(cond: Condition, f, matches: bool) -> None:
    assert cond.matches(f, f.recipients) is matches
