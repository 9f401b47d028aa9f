"""Classification in a worker process gives the very facts the gateway process computes."""

from __future__ import annotations

import os
import pickle
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from mailgw.pipeline.offload import ContentProcesses
from policies import load_policy

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "phutho.toml"
RAW = ("From: a@phutho.gov.vn\r\nTo: b@gmail.com\r\nSubject: x\r\n"
       "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
       "TỐI MẬT\r\nUBND TỈNH PHÚ THỌ\r\nSố: 12/QĐ-UBND\r\n").encode()


def test_facts_survive_pickling() -> None:
    policy = load_policy(SHIPPED)
    facts = policy.classify(RAW, "a@phutho.gov.vn", ["b@gmail.com"], domains=["phutho.gov.vn"])
    assert facts.secret_marking and facts.evidence_for("secret_marking")
    assert pickle.loads(pickle.dumps(facts)) == facts


def test_worker_process_gives_the_same_facts(tmp_path: Path) -> None:
    policy = load_policy(SHIPPED)
    domains = ["phutho.gov.vn"]
    here = policy.classify(RAW, "a@phutho.gov.vn", ["b@gmail.com"],
                           addresses=policy.address_classifier(domains), direction="outbound",
                           sender_unit="stc", only_needed=True)
    workers = ContentProcesses(policy, domains, tmp_path / "scratch")
    try:
        there = workers.classify(RAW, "a@phutho.gov.vn", ["b@gmail.com"], "outbound", "stc")
    finally:
        workers.close()
    assert there == here
    assert policy.evaluate(there).reasons == ("secret_marking",)
    assert list((tmp_path / "scratch").iterdir()) == []  # the scratch file is gone


def test_a_dead_worker_fails_one_message_and_the_next_gets_a_new_one(tmp_path: Path) -> None:
    policy = load_policy(SHIPPED)
    workers = ContentProcesses(policy, ["phutho.gov.vn"], tmp_path / "scratch")
    try:
        # A worker that dies (as a crash in a parser would) breaks the pool under it.
        with pytest.raises(BrokenProcessPool):
            workers._get().submit(os._exit, 3).result()
        with pytest.raises(BrokenProcessPool):
            workers.classify(RAW, "a@phutho.gov.vn", ["b@gmail.com"], "outbound", "stc")
        facts = workers.classify(RAW, "a@phutho.gov.vn", ["b@gmail.com"], "outbound", "stc")
        assert facts.secret_marking
    finally:
        workers.close()
    assert list((tmp_path / "scratch").iterdir()) == []


def test_no_room_for_the_scratch_file_fails_the_message(tmp_path: Path) -> None:
    # The scratch directory cannot be made (a file is in its way), as a full disk would fail
    # the write: the caller gets the OSError (the edge answers 451), nothing is classified.
    policy = load_policy(SHIPPED)
    (tmp_path / "scratch").write_text("not a directory")
    workers = ContentProcesses(policy, ["phutho.gov.vn"], tmp_path / "scratch")
    try:
        with pytest.raises(OSError):
            workers.classify(RAW, "a@phutho.gov.vn", ["b@gmail.com"], "outbound", "stc")
    finally:
        workers.close()


def test_scratch_files_of_dead_processes_are_removed_at_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    orphan = scratch / f"job-{dead}-abc"
    alive = scratch / f"job-{os.getpid()}-def"
    orphan.write_bytes(b"x")
    alive.write_bytes(b"y")
    ContentProcesses(load_policy(SHIPPED), ["phutho.gov.vn"], scratch).close()
    assert not orphan.exists()
    assert alive.exists()
