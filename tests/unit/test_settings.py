"""The settings module and its documentation agree; defaults are sane."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from creditbus.settings import SETTINGS_DOC, Settings, SettingsError, settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_every_variable_read_is_documented() -> None:
    source = (ROOT / "creditbus" / "settings.py").read_text()
    read = set(re.findall(r'_(?:env|optional_path)\("(CREDITBUS_[A-Z_]+)"', source))
    for name in re.findall(r'_secret\("(CREDITBUS_[A-Z_]+)"', source):
        read |= {name, f"{name}_FILE"}
    documented = {s.env for s in SETTINGS_DOC}
    assert read == documented
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown(), (
        "docs/settings.md is stale: regenerate it with "
        "python -c 'from creditbus.settings import settings_markdown as m; print(m(), end=\"\")'"
        " > docs/settings.md"
    )


def test_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for s in SETTINGS_DOC:
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
    for s in SETTINGS_DOC:
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
    # Kafka TLS (CREDITBUS_KAFKA_CA_FILE) lands with issue 17's parts 1-2; until then
    # production refuses every Kafka client, rightly
    tls_pending = [] if "kafka_ca_file" in {f.name for f in fields(Settings)} else [
        "Kafka without TLS (CREDITBUS_KAFKA_CA_FILE is not set)"]
    everything = ["person_key", "kafka", "database"]
    monkeypatch.setenv("CREDITBUS_DATABASE_URL",
                       "postgresql://creditbus_reader@db.example.org/creditbus?sslmode=require")
    problems = production_problems(Settings.from_env(), everything)
    assert len(problems) == 1 + len(tls_pending)
    assert "sslmode=verify-full" in problems[-1]
    monkeypatch.setenv("CREDITBUS_DATABASE_URL",
                       "postgresql://creditbus_reader@db.example.org/creditbus"
                       "?sslmode=verify-full&sslrootcert=/run/secrets/pg-ca.pem")
    assert production_problems(Settings.from_env(), everything) == tls_pending
    monkeypatch.setenv("CREDITBUS_DATABASE_URL", "postgresql://creditbus_reader@127.0.0.1/cb")
    assert production_problems(Settings.from_env(), ["database"]) == []  # loopback only
    secret.write_text("short")
    assert "shorter than 32 bytes" in production_problems(Settings.from_env(),
                                                          ["person_key"])[0]
