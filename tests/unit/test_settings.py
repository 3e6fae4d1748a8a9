"""The settings model, its generated documentation, defaults and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from creditbus.settings import (
    SECRET_FIELDS,
    Settings,
    SettingsError,
    environment_variables,
    settings_markdown,
)

ROOT = Path(__file__).resolve().parents[2]


def test_docs_settings_page_is_generated_from_the_model() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown(), (
        "docs/settings.md is stale: regenerate it with "
        ".venv/bin/creditbus settings --markdown > docs/settings.md"
    )
    names = [v.env for v in environment_variables()]
    assert len(names) == len(set(names)) == len(Settings.model_fields) + len(SECRET_FIELDS)
    assert all(v.doc for v in environment_variables())
    printed = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "settings",
                              "--markdown"], capture_output=True, text=True, check=True)
    assert printed.stdout == settings_markdown()


def test_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for s in environment_variables():
        monkeypatch.delenv(s.env, raising=False)
    monkeypatch.setenv("CREDITBUS_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.topic_prefix == "credit"
    assert settings.database_url == f"sqlite:///{tmp_path / 'platform.db'}"
    assert settings.bootstrap == ""  # no local broker recorded in this home
    assert settings.uses_dev_secret
    assert "***" == settings.describe()["person_key_secret"]

    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", "kafka-1:9092")
    monkeypatch.setenv("CREDITBUS_PARTITIONS", "12")
    settings = Settings.from_env()
    assert settings.bootstrap == "kafka-1:9092"
    assert settings.partitions == 12


def _clean_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for s in environment_variables():
        monkeypatch.delenv(s.env, raising=False)
    monkeypatch.setenv("CREDITBUS_HOME", str(home))


def _secret_file(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_secrets_from_files_with_owner_only_permissions(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clean_env(monkeypatch, tmp_path)
    secret = _secret_file(tmp_path / "person-key", "s" * 40 + "\n", 0o600)
    monkeypatch.setenv("CREDITBUS_PERSON_KEY_SECRET_FILE", str(secret))
    password = _secret_file(tmp_path / "sink-db", "pw-from-file\n", 0o400)
    monkeypatch.setenv("CREDITBUS_DB_SINK_PASSWORD_FILE", str(password))
    settings = Settings.from_env()
    assert settings.person_key_secret == b"s" * 40  # trailing newline dropped
    assert not settings.uses_dev_secret
    assert settings.db_sink_password == "pw-from-file"
    shown = settings.describe()
    assert shown["db_sink_password"] == "***" and "pw-from-file" not in repr(settings)

    secret.chmod(0o640)  # group-readable: refused, the message says what to do
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert "CREDITBUS_PERSON_KEY_SECRET_FILE" in message and "0640" in message
    assert f"chmod 600 {secret}" in message and "s" * 40 not in message

    secret.chmod(0o600)
    monkeypatch.setenv("CREDITBUS_PERSON_KEY_SECRET", "also-in-the-environment")
    with pytest.raises(SettingsError, match="keep only the file"):
        Settings.from_env()
    monkeypatch.delenv("CREDITBUS_PERSON_KEY_SECRET")
    monkeypatch.setenv("CREDITBUS_PERSON_KEY_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="cannot read secret file"):
        Settings.from_env()
    _secret_file(tmp_path / "empty", "\n", 0o600)
    monkeypatch.setenv("CREDITBUS_PERSON_KEY_SECRET_FILE", str(tmp_path / "empty"))
    with pytest.raises(SettingsError, match="is empty"):
        Settings.from_env()


def test_listeners_default_to_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clean_env(monkeypatch, tmp_path)
    settings = Settings.from_env()
    assert settings.query_host == settings.metrics_host == "127.0.0.1"
    assert settings.query_tls_cert is None and settings.env == "development"
    monkeypatch.setenv("CREDITBUS_QUERY_HOST", "0.0.0.0")
    monkeypatch.setenv("CREDITBUS_METRICS_HOST", "0.0.0.0")
    settings = Settings.from_env()
    assert settings.query_host == settings.metrics_host == "0.0.0.0"
    monkeypatch.setenv("CREDITBUS_ENV", "staging")
    with pytest.raises(SettingsError, match="CREDITBUS_ENV"):
        Settings.from_env()


def test_production_refuses_development_defaults(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from creditbus.cli import main as cli_main
    from creditbus.security.production import production_problems, refuse_development_defaults

    _clean_env(monkeypatch, tmp_path)
    assert production_problems(Settings.from_env(), ["person_key", "kafka", "database"]) == []
    monkeypatch.setenv("CREDITBUS_ENV", "production")
    settings = Settings.from_env()
    problems = production_problems(settings, ["person_key", "kafka", "database"])
    assert len(problems) == 4
    assert "development secret" in problems[0] and "without authentication" in problems[1]
    assert "without TLS" in problems[2] and "SQLite" in problems[3]
    with pytest.raises(SettingsError, match="creditbus worker"):
        refuse_development_defaults(settings, "worker")
    refuse_development_defaults(settings, "catalog")  # uses none of them

    # the command line: one line on stderr, exit 2, before anything starts
    assert cli_main.main(["sink"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: CREDITBUS_ENV=production")
    assert cli_main.main(["demo"]) == 2
    assert "development machines only" in capsys.readouterr().err

    secret = _secret_file(tmp_path / "person-key", "k" * 48, 0o600)
    monkeypatch.setenv("CREDITBUS_PERSON_KEY_SECRET_FILE", str(secret))
    monkeypatch.setenv("CREDITBUS_KAFKA_USERNAME", "query")
    monkeypatch.setenv("CREDITBUS_KAFKA_PASSWORD", "pw")
    monkeypatch.setenv("CREDITBUS_KAFKA_CA_FILE", str(tmp_path / "kafka-ca.pem"))
    everything = ["person_key", "kafka", "database"]
    monkeypatch.setenv("CREDITBUS_DATABASE_URL",
                       "postgresql://creditbus_reader@db.example.org/creditbus?sslmode=require")
    problems = production_problems(Settings.from_env(), everything)
    assert len(problems) == 1
    assert "sslmode=verify-full" in problems[-1]
    monkeypatch.setenv("CREDITBUS_DATABASE_URL",
                       "postgresql://creditbus_reader@db.example.org/creditbus"
                       "?sslmode=verify-full&sslrootcert=/run/secrets/pg-ca.pem")
    assert production_problems(Settings.from_env(), everything) == []
    monkeypatch.setenv("CREDITBUS_DATABASE_URL", "postgresql://creditbus_reader@127.0.0.1/cb")
    assert production_problems(Settings.from_env(), ["database"]) == []  # loopback only
    secret.write_text("short")
    assert "shorter than 32 bytes" in production_problems(Settings.from_env(),
                                                          ["person_key"])[0]


def test_an_unusable_value_is_one_error_naming_its_variable(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from creditbus.cli import main as cli_main

    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("CREDITBUS_PARTITIONS", "many")
    monkeypatch.setenv("CREDITBUS_QUERY_PORT", "70000")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert message.startswith("CREDITBUS_PARTITIONS: ") and "'many'" in message
    assert "CREDITBUS_QUERY_PORT: " in message and "65535" in message
    assert "default factory" not in message  # the computed defaults are not blamed
    assert cli_main.main(["settings"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: CREDITBUS_PARTITIONS")

    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("CREDITBUS_KAFKA_SECURE", "perhaps")
    with pytest.raises(SettingsError, match="CREDITBUS_KAFKA_SECURE"):
        Settings.from_env()
    monkeypatch.setenv("CREDITBUS_KAFKA_SECURE", "yes")
    monkeypatch.setenv("CREDITBUS_FIELD_PRIVATE_KEYS", " a.pem, ~/b.pem,")
    monkeypatch.setenv("CREDITBUS_TOPIC_PREFIX", "   ")  # blank: the default
    monkeypatch.setenv("CREDITBUS_LOG_LEVEL", "debug")
    settings = Settings.from_env()
    assert settings.kafka_secure and settings.topic_prefix == "credit"
    assert settings.field_private_keys == (Path("a.pem"), Path("~/b.pem").expanduser())
    assert settings.log_level == "DEBUG" and settings.state_dir == tmp_path / "worker"
