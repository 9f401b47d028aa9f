"""Maildir delivery: one file per recipient, written via tmp/ and renamed into new/."""

from __future__ import annotations

from mailgw.delivery import maildir
from mailgw.delivery.worker import DeliveryService
from tests.delivery.conftest import enqueue, entries, message, plain_config, wait_for


def test_one_file_per_recipient_nothing_left_in_tmp(tmp_path):
    content = b"Subject: hi\r\n\r\nbody\r\n"
    results = maildir.deliver(tmp_path, ["a@phutho.gov.vn", "B@Phutho.gov.vn"], content)
    assert {r.kind for r in results.values()} == {"delivered"}
    for box in ("a@phutho.gov.vn", "B@phutho.gov.vn"):
        files = list((tmp_path / box / "new").iterdir())
        assert len(files) == 1 and files[0].read_bytes() == content
        assert list((tmp_path / box / "tmp").iterdir()) == []
        assert (tmp_path / box / "cur").is_dir()
    # A second copy is a second file, never an overwrite.
    maildir.deliver(tmp_path, ["a@phutho.gov.vn"], content)
    assert len(list((tmp_path / "a@phutho.gov.vn" / "new").iterdir())) == 2


def test_addresses_that_are_not_safe_names_fail_permanently(tmp_path):
    results = maildir.deliver(tmp_path / "box", ["../etc@x.org", ".hidden@x.org"], b"x\r\n")
    assert {r.kind for r in results.values()} == {"permanent"}
    assert not (tmp_path / "etc@x.org").exists() and not (tmp_path / "box").exists()


def test_unwritable_directory_is_a_temporary_failure(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    [r] = maildir.deliver(blocker, ["a@x.org"], b"x\r\n").values()
    assert r.kind == "temporary" and r.reply.startswith("451")


async def test_worker_delivers_routed_domain_to_maildir(engine, tmp_path):
    box = tmp_path / "delivered"
    config = plain_config(tmp_path, default="smtp:[127.0.0.1]:9",
                         routes={"phutho.gov.vn": f"maildir:{box}"})
    svc = DeliveryService(config, engine, "n1")
    await svc.start()
    try:
        qid = enqueue(engine, ["a@phutho.gov.vn", "b@sotc.phutho.gov.vn"])
        svc.wake()
        await wait_for(lambda: message(engine, qid).status == "done")
    finally:
        await svc.stop()
    assert len(list((box / "a@phutho.gov.vn" / "new").iterdir())) == 1
    assert len(list((box / "b@sotc.phutho.gov.vn" / "new").iterdir())) == 1
    assert entries(engine, qid)["a@phutho.gov.vn"].next_hop == f"maildir:{box}"
