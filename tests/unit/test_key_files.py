"""Field-protection keys from files: owner-only permissions, and the rotation procedure of
docs/security.md run through the settings a worker and a publisher read."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditbus.security.envelope import (
    SEAL_UNKNOWN_KEY,
    FieldProtectionError,
    event_aad,
    open_person,
    seal_person,
)
from creditbus.security.keys import (
    FieldKeyError,
    generate_key_files,
    private_keys_from_settings,
    public_key_from_settings,
)
from creditbus.settings import Settings, environment_variables

ID_NUMBER = "360702198205140314"  # fictitious, valid check character
AAD = event_aad("justice", "SFJ-CF-2024-0007", "ab" * 32)


def _settings(monkeypatch: pytest.MonkeyPatch, home: Path, public: Path,
              private: list[Path]) -> Settings:
    for s in environment_variables():
        monkeypatch.delenv(s.env, raising=False)
    monkeypatch.setenv("CREDITBUS_HOME", str(home))
    monkeypatch.setenv("CREDITBUS_FIELD_PUBLIC_KEY", str(public))
    monkeypatch.setenv("CREDITBUS_FIELD_PRIVATE_KEYS", ",".join(map(str, private)))
    return Settings.from_env()


def test_a_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    files = generate_key_files(tmp_path / "keys")
    files.private_path.chmod(0o644)
    with pytest.raises(FieldKeyError) as caught:
        private_keys_from_settings(type("S", (), {"field_private_keys": (files.private_path,)}))
    message = str(caught.value)
    assert str(files.private_path) in message and "0644" in message and "chmod 600" in message
    assert "PRIVATE KEY" not in message
    files.private_path.chmod(0o400)  # read-only for its owner is fine
    assert list(private_keys_from_settings(
        type("S", (), {"field_private_keys": (files.private_path,)}))) == [files.key_id]


def test_rotation_keeps_old_data_readable(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    old = generate_key_files(tmp_path / "keys")
    before = _settings(monkeypatch, tmp_path, old.public_path, [old.private_path])
    sealed_before = seal_person({"id_number": ID_NUMBER, "name": "刘建华"},
                                public_key_from_settings(before), aad=AAD)  # type: ignore[arg-type]

    # 1. a new pair; 2. workers get both private keys; 3. publishers the new public key
    new = generate_key_files(tmp_path / "keys")
    worker = _settings(monkeypatch, tmp_path, new.public_path,
                       [new.private_path, old.private_path])
    sealed_after = seal_person({"id_number": ID_NUMBER, "name": "刘建华"},
                               public_key_from_settings(worker), aad=AAD)  # type: ignore[arg-type]
    assert sealed_after["sealed"]["key_id"] == new.key_id != old.key_id
    keys = private_keys_from_settings(worker)
    assert set(keys) == {old.key_id, new.key_id}
    for sealed in (sealed_before, sealed_after):  # whichever order they arrive in
        assert open_person(sealed, keys, aad=AAD)["id_number"] == ID_NUMBER

    # 4. retiring the old key too early: its events are SEAL_UNKNOWN_KEY, not garbage
    retired = _settings(monkeypatch, tmp_path, new.public_path, [new.private_path])
    with pytest.raises(FieldProtectionError) as caught:
        open_person(sealed_before, private_keys_from_settings(retired), aad=AAD)
    assert caught.value.code == SEAL_UNKNOWN_KEY
