"""Field protection: sealing a person's identity number and name for the stream workers."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from creditbus.contract.schemas import tagged
from creditbus.contract.wire import Wire
from creditbus.security.envelope import (
    PLACEHOLDER,
    SEAL_INVALID,
    SEAL_UNKNOWN_KEY,
    FieldProtectionError,
    event_aad,
    open_event,
    open_person,
    seal_event,
    seal_person,
)
from creditbus.security.keys import (
    FieldKeyError,
    generate_key_files,
    key_id,
    load_private_keys,
    load_public_key,
    private_keys_from_settings,
    public_key_from_settings,
)

ID_NUMBER = "360702198205140314"  # fictitious, valid check character
NAME = "刘建华"
AAD = event_aad("justice", "SFJ-CF-2024-0007", "ab" * 32)


def person() -> dict[str, Any]:
    return {"id_number": ID_NUMBER, "name": NAME, "organisation": "江西赣江律师事务所",
            "organisation_uscc": None}


@pytest.fixture(scope="module")
def key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def keys_of(*private: X25519PrivateKey) -> dict[str, X25519PrivateKey]:
    return {key_id(k.public_key()): k for k in private}


def test_round_trip(key: X25519PrivateKey) -> None:
    sealed = seal_person(person(), key.public_key(), aad=AAD)
    assert sealed["id_number"] == sealed["name"] == PLACEHOLDER
    assert sealed["organisation"] == "江西赣江律师事务所"  # not sealed
    box = sealed["sealed"]
    assert box["key_id"] == key_id(key.public_key()) and len(box["key_id"]) == 16
    assert len(box["ephemeral_public_key"]) == 32 and len(box["nonce"]) == 12
    assert ID_NUMBER.encode() not in box["ciphertext"] and NAME.encode() not in box["ciphertext"]
    opened = open_person(sealed, keys_of(key), aad=AAD)
    assert opened == {**person(), "sealed": None}


def test_every_seal_is_fresh(key: X25519PrivateKey) -> None:
    first = seal_person(person(), key.public_key(), aad=AAD)["sealed"]
    second = seal_person(person(), key.public_key(), aad=AAD)["sealed"]
    assert first["ephemeral_public_key"] != second["ephemeral_public_key"]
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]


def test_a_clear_person_is_left_as_it_is(key: X25519PrivateKey) -> None:
    clear = {**person(), "sealed": None}
    assert open_person(clear, keys_of(key), aad=AAD) == clear
    assert open_person(person(), {}, aad=AAD) == person()


def test_wrong_key_is_an_unknown_key(key: X25519PrivateKey) -> None:
    sealed = seal_person(person(), key.public_key(), aad=AAD)
    with pytest.raises(FieldProtectionError) as caught:
        open_person(sealed, keys_of(X25519PrivateKey.generate()), aad=AAD)
    assert caught.value.code == SEAL_UNKNOWN_KEY
    assert ID_NUMBER not in str(caught.value) and NAME not in str(caught.value)


def test_a_foreign_key_under_the_right_id_does_not_open(key: X25519PrivateKey) -> None:
    sealed = seal_person(person(), key.public_key(), aad=AAD)
    impostor = {sealed["sealed"]["key_id"]: X25519PrivateKey.generate()}
    with pytest.raises(FieldProtectionError) as caught:
        open_person(sealed, impostor, aad=AAD)
    assert caught.value.code == SEAL_INVALID


@pytest.mark.parametrize("part", ["ciphertext", "nonce", "ephemeral_public_key"])
def test_tampering_is_detected(key: X25519PrivateKey, part: str) -> None:
    sealed = seal_person(person(), key.public_key(), aad=AAD)
    data = bytearray(sealed["sealed"][part])
    data[len(data) // 2] ^= 0x01
    sealed["sealed"] = {**sealed["sealed"], part: bytes(data)}
    with pytest.raises(FieldProtectionError) as caught:
        open_person(sealed, keys_of(key), aad=AAD)
    assert caught.value.code == SEAL_INVALID


@pytest.mark.parametrize("change", ["truncated", "no nonce", "short nonce", "clear id"])
def test_malformed_seals_are_invalid(key: X25519PrivateKey, change: str) -> None:
    sealed = seal_person(person(), key.public_key(), aad=AAD)
    box = dict(sealed["sealed"])
    if change == "truncated":
        box["ciphertext"] = box["ciphertext"][:10]
    elif change == "no nonce":
        del box["nonce"]
    elif change == "short nonce":
        box["nonce"] = box["nonce"][:8]
    else:
        sealed["id_number"] = ID_NUMBER  # clear and sealed at once: ambiguous, refused
    sealed["sealed"] = box
    with pytest.raises(FieldProtectionError) as caught:
        open_person(sealed, keys_of(key), aad=AAD)
    assert caught.value.code == SEAL_INVALID


@pytest.mark.parametrize(
    "other",
    [
        event_aad("health", "SFJ-CF-2024-0007", "ab" * 32),  # another unit
        event_aad("justice", "SFJ-CF-2024-0008", "ab" * 32),  # another record
        event_aad("justice", "SFJ-CF-2024-0007", "cd" * 32),  # another event
    ],
)
def test_a_seal_moved_to_another_event_does_not_open(key: X25519PrivateKey, other: bytes) -> None:
    sealed = seal_person(person(), key.public_key(), aad=AAD)
    with pytest.raises(FieldProtectionError) as caught:
        open_person(sealed, keys_of(key), aad=other)
    assert caught.value.code == SEAL_INVALID


def test_event_aad_is_unambiguous() -> None:
    assert event_aad("a", "b.c", "d") != event_aad("a.b", "c", "d")
    assert event_aad("a", "b", "c") != event_aad("a", "b", "c ")


def test_rotation_old_and_new_keys_both_open() -> None:
    old, new = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    before = seal_person(person(), old.public_key(), aad=AAD)  # sealed before the rotation
    after = seal_person(person(), new.public_key(), aad=AAD)  # publishers switched keys
    assert before["sealed"]["key_id"] != after["sealed"]["key_id"]
    worker_keys = keys_of(old, new)
    assert open_person(before, worker_keys, aad=AAD)["id_number"] == ID_NUMBER
    assert open_person(after, worker_keys, aad=AAD)["id_number"] == ID_NUMBER
    with pytest.raises(FieldProtectionError) as caught:  # old key retired too early
        open_person(before, keys_of(new), aad=AAD)
    assert caught.value.code == SEAL_UNKNOWN_KEY


def test_cannot_seal_twice_or_without_fields(key: X25519PrivateKey) -> None:
    sealed = seal_person(person(), key.public_key(), aad=AAD)
    with pytest.raises(FieldProtectionError):
        seal_person(sealed, key.public_key(), aad=AAD)
    with pytest.raises(FieldProtectionError):
        seal_person({"name": NAME}, key.public_key(), aad=AAD)


def test_sealed_events_travel_through_the_wire(key: X25519PrivateKey) -> None:
    """A sealed event encodes with the current schema (v3) and opens after decoding."""
    event: dict[str, Any] = {
        "event_id": "ef" * 32, "unit": "justice",
        "published_at": datetime(2024, 3, 4, 1, 30, tzinfo=UTC),
        "occurred_at": datetime(2024, 2, 25, 16, 0, tzinfo=UTC),
        "action": "UPSERT", "record_id": "SFJ-CF-2024-0007", "person": person(),
        "group": "lawyer", "category": "career", "severity": None,
        "content": tagged("CareerEntry", {"organisation": "江西赣江律师事务所",
                                          "position": "专职律师",
                                          "start_date": datetime(2016, 7, 1).date(),
                                          "end_date": None}),
    }
    wire = Wire()
    value = wire.encode("CreditEvent", seal_event(event, key.public_key()))
    assert ID_NUMBER.encode() not in value and NAME.encode() not in value
    decoded = wire.decode(value).datum
    assert decoded["person"]["id_number"] == PLACEHOLDER
    opened = open_event(decoded, keys_of(key))
    assert opened["person"]["id_number"] == ID_NUMBER and opened["person"]["name"] == NAME
    assert opened["person"]["sealed"] is None
    moved = dict(decoded, record_id="SFJ-CF-2024-0099")
    with pytest.raises(FieldProtectionError):
        open_event(moved, keys_of(key))


def test_key_files(tmp_path: Path) -> None:
    files = generate_key_files(tmp_path / "keys")
    assert stat.S_IMODE(files.private_path.stat().st_mode) == 0o600
    assert files.private_path.name == f"field-{files.key_id}.key.pem"
    public = load_public_key(files.public_path)
    assert key_id(public) == files.key_id
    keys = load_private_keys([files.private_path])
    assert list(keys) == [files.key_id]
    sealed = seal_person(person(), public, aad=AAD)
    assert open_person(sealed, keys, aad=AAD)["name"] == NAME
    with pytest.raises(FieldKeyError):
        load_public_key(files.private_path)
    with pytest.raises(FieldKeyError):
        load_private_keys([tmp_path / "missing.pem"])


def test_keys_from_settings(tmp_path: Path) -> None:
    old = generate_key_files(tmp_path)
    new = generate_key_files(tmp_path)

    class Old:  # a Settings before the lead adds the fields
        pass

    class New:
        field_public_key = new.public_path
        field_private_keys = (old.private_path, new.private_path)

    assert public_key_from_settings(Old()) is None
    assert private_keys_from_settings(Old()) == {}
    assert key_id(public_key_from_settings(New())) == new.key_id  # type: ignore[arg-type]
    assert set(private_keys_from_settings(New())) == {old.key_id, new.key_id}
    as_text = type("Env", (), {"field_private_keys": f"{old.private_path}, {new.private_path}"})
    assert set(private_keys_from_settings(as_text())) == {old.key_id, new.key_id}
