"""The enqueue stage's header lines."""

from __future__ import annotations


def test_date_field_is_the_stdlib_date_to_the_second() -> None:
    # The enqueue stage remembers the formatted date per second: same text as format_datetime.
    import random
    from datetime import UTC, datetime, timedelta, timezone
    from email.utils import format_datetime

    from mailgw.pipeline.stages.enqueue import date_field

    rnd = random.Random(27)
    start = datetime(2026, 11, 27, tzinfo=UTC)
    for _ in range(500):
        tz = timezone(timedelta(minutes=rnd.choice([0, 420, -300, 330])))
        when = (start + timedelta(seconds=rnd.randrange(10**6),
                                  microseconds=rnd.randrange(10**6))).astimezone(tz)
        assert date_field(when) == format_datetime(when)
