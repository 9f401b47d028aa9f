"""`mailgw queue list|show|retry|delete` through click's CliRunner, on both engines."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import root
from mailgw.delivery.result import Result
from mailgw.queue import store
from mailgw.store.db import session_factory
from tests.delivery.conftest import enqueue, entries, message


def _run(db_url: str, tmp_path, *args: str):
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[store]\nurl = "{db_url}"\n[gateway]\ndata_dir = "{tmp_path}"\n')
    return CliRunner().invoke(root, ["--config", str(cfg), "queue", *args],
                              catch_exceptions=False)


def _defer(engine, qid):
    with session_factory(engine).begin() as s:
        claimed = store.claim_due(s, "n1", 10, 60)
        store.record_results(s, "n1", "smtp:[192.0.2.1]:25",
                             [(c.entry_id, Result("temporary", "451 4.4.1 host down"))
                              for c in claimed if c.queue_id == qid],
                             retry_initial=600, retry_max=3600, max_age=86400)


def test_list_and_show(engine, db_url, tmp_path):
    qid = enqueue(engine, ["a@example.org", "b@example.org"], auth_user="chuyenvien")
    _defer(engine, qid)
    out = _run(db_url, tmp_path, "list")
    assert out.exit_code == 0, out.output
    assert qid in out.output and "deferred" in out.output and "<a@example.org>" in out.output
    data = json.loads(_run(db_url, tmp_path, "list", "--json").output)
    assert [m["queue_id"] for m in data] == [qid]
    assert json.loads(_run(db_url, tmp_path, "list", "--json", "--status", "done").output) == []
    shown = _run(db_url, tmp_path, "show", qid)
    assert shown.exit_code == 0
    assert "451 4.4.1 host down" in shown.output and "attempts 1" in shown.output
    info = json.loads(_run(db_url, tmp_path, "show", qid, "--json").output)
    assert info["auth_user"] == "chuyenvien"
    assert {r["recipient"]: r["status"] for r in info["recipients"]} == {
        "a@example.org": "deferred", "b@example.org": "deferred"}
    assert all(r["next_attempt"] for r in info["recipients"])


def test_retry_and_delete(engine, db_url, tmp_path):
    qid = enqueue(engine, ["a@example.org"])
    _defer(engine, qid)
    before = entries(engine, qid)["a@example.org"].next_attempt_at
    out = _run(db_url, tmp_path, "retry", qid)
    assert out.exit_code == 0 and "1 recipient(s) due now" in out.output
    assert entries(engine, qid)["a@example.org"].next_attempt_at < before
    assert _run(db_url, tmp_path, "retry", "--all").exit_code == 0
    out = _run(db_url, tmp_path, "delete", qid)
    assert out.exit_code == 0 and "1 recipient(s)" in out.output
    assert entries(engine, qid)["a@example.org"].status == "deleted"
    assert message(engine, qid).status == "done"
    assert "queue is empty" in _run(db_url, tmp_path, "list").output


def test_unknown_ids_and_bad_usage_exit_1_with_one_line(engine, db_url, tmp_path):
    for args in (["show", "NOPE"], ["retry", "NOPE"], ["delete", "NOPE"], ["retry"],
                 ["retry", "X", "--all"]):
        out = _run(db_url, tmp_path, *args)
        assert out.exit_code == 1, (args, out.output)
        lines = out.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mailgw: "), out.output


def test_show_names_the_parked_stage(engine, db_url, tmp_path):
    qid = enqueue(engine, ["a@example.org"])
    with session_factory(engine).begin() as s:
        store.park(s, "n1", message(engine, qid).id, "transform", "DkimError: no key")
    out = _run(db_url, tmp_path, "show", qid)
    assert "parked:" in out.output and "stage transform: DkimError: no key" in out.output
    assert qid in _run(db_url, tmp_path, "list", "--status", "parked").output
    assert _run(db_url, tmp_path, "retry", qid).exit_code == 0
    assert message(engine, qid).status == "accepted" and message(engine, qid).parked_stage is None
