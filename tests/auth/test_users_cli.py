"""`mailgw users …` through click's CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from cli.main import root
from mailgw.auth import LocalAuthenticator
from mailgw.config import load
from mailgw.store.db import make_engine, session_factory
from mailgw.store.models import User

PW = "mat-khau-du-dai"


def run(url: str, *args: str, input: str | None = None):
    result = CliRunner().invoke(root, list(args), input=input,
                                env={"MAILGW_STORE__URL": url, "MAILGW_CONFIG": None})
    return result


def authenticate(url: str, login: str, password: str):
    engine = make_engine(url)
    try:
        auth = LocalAuthenticator(session_factory(engine), load(environ={}))
        return auth.authenticate_sync(login, password)
    finally:
        engine.dispose()


def test_add_list_passwd_disable_enable(db_url, engine):
    r = run(db_url, "users", "add", "NguyenVanA@PhuTho.gov.vn", "--name", "Nguyễn Văn A",
            "--alias", "vanthu@phutho.gov.vn", "--password-stdin", input=PW + "\n")
    assert r.exit_code == 0, r.output
    assert "user nguyenvana@phutho.gov.vn added" in r.output

    with Session(engine) as s:
        stored = s.scalar(select(User.password_hash))
    assert stored.startswith("$argon2id$") and PW not in stored

    r = run(db_url, "users", "list", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [(u["address"], u["name"], u["aliases"], u["disabled"]) for u in rows] == [
        ("nguyenvana@phutho.gov.vn", "Nguyễn Văn A", ["vanthu@phutho.gov.vn"], False)]
    result = authenticate(db_url, "nguyenvana@phutho.gov.vn", PW)
    assert result is not None and "vanthu@phutho.gov.vn" in result.senders

    r = run(db_url, "users", "passwd", "nguyenvana@phutho.gov.vn",
            input="mat-khau-moi-2026\nmat-khau-moi-2026\n")
    assert r.exit_code == 0, r.output
    assert PW not in r.output and "mat-khau-moi" not in r.output  # hidden input
    assert authenticate(db_url, "nguyenvana@phutho.gov.vn", PW) is None
    assert authenticate(db_url, "nguyenvana@phutho.gov.vn", "mat-khau-moi-2026") is not None

    r = run(db_url, "users", "disable", "nguyenvana@phutho.gov.vn")
    assert r.exit_code == 0 and "disabled" in r.output
    assert authenticate(db_url, "nguyenvana@phutho.gov.vn", "mat-khau-moi-2026") is None
    r = run(db_url, "users", "list")
    assert "nguyenvana@phutho.gov.vn  disabled  Nguyễn Văn A" in r.output

    r = run(db_url, "users", "enable", "nguyenvana@phutho.gov.vn")
    assert r.exit_code == 0 and "enabled" in r.output
    assert authenticate(db_url, "nguyenvana@phutho.gov.vn", "mat-khau-moi-2026") is not None


def test_password_prompt_twice(db_url, engine):
    r = run(db_url, "users", "add", "a@phutho.gov.vn", input=f"{PW}\n{PW}\n")
    assert r.exit_code == 0, r.output
    assert r.output.count("Password") == 1 and "Repeat for confirmation" in r.output
    assert PW not in r.output
    # Two different entries: asked again, and nothing is created when input runs out.
    r = run(db_url, "users", "add", "b@phutho.gov.vn", input=f"{PW}\nkhac-hoan-toan\n")
    assert r.exit_code == 1
    assert "do not match" in r.output
    assert [u["address"] for u in json.loads(run(db_url, "users", "list", "--json").output)] \
        == ["a@phutho.gov.vn"]


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["add", "a@phutho.gov.vn", "--password-stdin"], PW + "\n", "already exists"),
    (["add", "A@PHUTHO.GOV.VN", "--password-stdin"], PW + "\n", "already exists"),
    (["add", "b@gmail.com", "--password-stdin"], PW + "\n", "not in the gateway's domains"),
    (["add", "b%gmail.com@phutho.gov.vn", "--password-stdin"], PW + "\n", "not a usable"),
    (["add", "b@phutho.gov.vn", "--password-stdin"], "ngan\n", "at least 8 characters"),
    (["add", "b@phutho.gov.vn", "--password-stdin"], "", "no password"),
    (["add", "b@phutho.gov.vn", "--alias", "x@gmail.com", "--password-stdin"], PW + "\n",
     "not in the gateway's domains"),
    (["passwd", "khongco@phutho.gov.vn", "--password-stdin"], PW + "\n", "no such user"),
    (["disable", "khongco@phutho.gov.vn"], None, "no such user"),
    (["enable", "khongco@phutho.gov.vn"], None, "no such user"),
])
def test_user_errors_are_one_line(db_url, engine, args, stdin, message):
    assert run(db_url, "users", "add", "a@phutho.gov.vn", "--password-stdin",
               input=PW + "\n").exit_code == 0
    r = run(db_url, "users", *args, input=stdin)
    assert r.exit_code == 1
    assert message in r.output
    assert r.output.strip().count("\n") == 0, r.output
    assert "Traceback" not in r.output
    assert len(json.loads(run(db_url, "users", "list", "--json").output)) == 1


def test_fresh_sqlite_store_is_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'mailgw.db'}"
    r = run(url, "users", "list")
    assert r.exit_code == 0, r.output
    assert "no users" in r.output
    assert run(url, "users", "add", "a@phutho.gov.vn", "--password-stdin",
               input=PW + "\n").exit_code == 0


def test_config_file(tmp_path):
    cfg = tmp_path / "mailgw.toml"
    cfg.write_text(f'[gateway]\ndomains = ["hanoi.gov.vn"]\ndata_dir = "{tmp_path / "var"}"\n',
                   encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(root, ["--config", str(cfg), "users", "add", "a@hanoi.gov.vn",
                             "--password-stdin"], input=PW + "\n",
                      env={"MAILGW_CONFIG": None, "MAILGW_STORE__URL": None})
    assert r.exit_code == 0, r.output
    assert (tmp_path / "var" / "mailgw.db").exists()


def test_postgresql_schema_not_upgraded_behind_the_operators_back(db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("the embedded SQLite store is upgraded automatically")
    r = run(db_url, "users", "list")
    assert r.exit_code == 1
    assert "mailgw db upgrade" in r.output
    assert r.output.strip().count("\n") == 0
