"""Post-acceptance stages on the worker's event loop: only for small, fresh messages whose
stages are all marked `cpu_only`; anything else (or a failing stage) goes to prepare() in a
thread, which can park the message."""

from __future__ import annotations

from datetime import UTC, datetime

from mailgw.pipeline import post
from mailgw.pipeline.stages import archive, transform
from mailgw.store.models import Message
from tests.delivery.conftest import SENDER, message_bytes


def _message(content: bytes, **over: object) -> Message:
    fields: dict[str, object] = dict(
        id=1, queue_id="Q1", message_id="<m@x>", direction="outbound", mail_from=SENDER,
        recipients=["a@example.org"], size=len(content), auth_user=None,
        received_at=datetime.now(UTC), verdict="allow", verdict_detail={},
        status="accepted", processed_at=None, content=content)
    fields.update(over)
    return Message(**fields)


@post.cpu_only
def _tag(content: bytes, facts: post.MessageFacts) -> bytes:
    return b"X-Tag: " + facts.queue_id.encode() + b"\r\n" + content


def _untagged(content: bytes, facts: post.MessageFacts) -> bytes:
    return content


@post.cpu_only
def _fails(content: bytes, facts: post.MessageFacts) -> bytes:
    raise ValueError("no")


def test_shipped_stages_are_marked() -> None:
    assert all(post.is_cpu_only(stage) for _, stage in post.default_stages(None))
    assert post.is_cpu_only(archive.run) and post.is_cpu_only(transform.run)


def test_small_fresh_message_with_cpu_only_stages_runs_here() -> None:
    m = _message(message_bytes())
    got = post.prepare_inline(m, [("tag", _tag)])
    assert got == post.Prepared(b"X-Tag: Q1\r\n" + m.content, fresh=True, changed=True)


def test_everything_else_goes_to_a_thread() -> None:
    small = message_bytes()
    assert post.prepare_inline(_message(small), [("tag", _tag), ("x", _untagged)]) is None
    assert post.prepare_inline(_message(small), [("fails", _fails)]) is None
    assert post.prepare_inline(_message(small, status="parked"), [("tag", _tag)]) is None
    assert post.prepare_inline(_message(small, processed_at=datetime.now(UTC)),
                               [("tag", _tag)]) is None
    big = b"x" * (post.INLINE_MAX_BYTES + 1)
    assert post.prepare_inline(_message(big), [("tag", _tag)]) is None
