"""Configuration: defaults, file, environment overrides, and errors that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import root
from mailgw.config import SCHEMA, ConfigError, defaults_values, load, render

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "mailgw.example.toml"


def test_embedded_defaults_need_no_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load(None, environ={})
    assert cfg.source == "embedded defaults"
    assert cfg.gateway.domains == ["phutho.gov.vn"]
    assert cfg.store_url == "sqlite:///var/mailgw.db"
    assert cfg.submission.listen == ["127.0.0.1:2587"]
    assert cfg.delivery.default == "maildir:var/delivered"
    assert cfg.submission.max_message_size == 35 * 1024 * 1024


def test_file_then_environment(tmp_path) -> None:
    f = tmp_path / "gw.toml"
    f.write_text('[gateway]\ndomains = ["phutho.gov.vn", "lamthao.phutho.gov.vn"]\n'
                 '[store]\nurl = "sqlite:///x.db"\n', encoding="utf-8")
    cfg = load(f, environ={"MAILGW_STORE__URL": "postgresql+psycopg://u@h/db",
                           "MAILGW_SUBMISSION__MAX_RECIPIENTS": "7"})
    assert cfg.gateway.domains == ["phutho.gov.vn", "lamthao.phutho.gov.vn"]
    assert cfg.store.url == "postgresql+psycopg://u@h/db"  # plain string, not TOML
    assert cfg.submission.max_recipients == 7


@pytest.mark.parametrize("text,expected", [
    ('[gateway]\ndomain = ["x"]\n', "unknown key gateway.domain"),
    ('[gatway]\n', "unknown section [gatway]"),
    ('[submission]\nmax_recipients = "many"\n', "submission.max_recipients: expected a whole"),
    ('[submission]\nlisten = ["localhost"]\n', "submission.listen: 'localhost' is not host:port"),
    ('[delivery]\ndefault = "ftp:x"\n', "delivery.default: 'ftp:x': expected maildir:"),
    ('[delivery]\nroutes = {"a.vn" = "smtp:[h"}\n', "delivery.routes.a.vn"),
    ('[submission]\ntrusted_hosts = [{name = "p", networks = ["10.0.0.0/8"]}]\n',
     "trusted_hosts[0].senders"),
    ('[tls]\ncert = "c.pem"\n', "tls.cert and tls.key"),
    ('[gateway\n', "not valid TOML"),
])
def test_bad_values_name_the_key(tmp_path, text, expected) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(f, environ={})
    assert expected in str(err.value)


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.processes: expected a whole number"):
        load(None, environ={"MAILGW_GATEWAY__PROCESSES": "two"})


def test_cli_prints_one_line_for_a_bad_config(tmp_path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[submission]\nmax_message_size = -5\n', encoding="utf-8")
    result = CliRunner().invoke(root, ["--config", str(f), "config", "show"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "submission.max_message_size: expected a number >= 1024, got -5" in result.output
    assert "Traceback" not in result.output


def test_example_file_documents_every_key_with_its_default() -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(example) == set(SCHEMA)
    for section, keys in SCHEMA.items():
        assert set(example[section]) == set(keys), section
    assert load(EXAMPLE, environ={}).values == defaults_values()
    text_ = EXAMPLE.read_text(encoding="utf-8")
    for keys in SCHEMA.values():
        for key in keys.values():
            assert key.doc in text_


def test_render_round_trips() -> None:
    values = defaults_values()
    assert tomllib.loads(render(values)) == values


def test_config_survives_pickling_for_worker_processes() -> None:
    # Large messages are signed in worker processes, which get the configuration pickled.
    import pickle

    config = load(None, environ={"MAILGW_SUBMISSION__MAX_RECIPIENTS": "7"})
    copy = pickle.loads(pickle.dumps(config))
    assert copy.submission.max_recipients == 7
    assert copy.values == config.values
    with pytest.raises(AttributeError, match=r"submission\.no_such_key"):
        _ = copy.submission.no_such_key
