"""The settings module and its documentation agree; defaults are sane."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from creditbus.settings import SETTINGS_DOC, Settings, settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_every_variable_read_is_documented() -> None:
    source = (ROOT / "creditbus" / "settings.py").read_text()
    read = set(re.findall(r'_env\("(CREDITBUS_[A-Z_]+)"', source))
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
