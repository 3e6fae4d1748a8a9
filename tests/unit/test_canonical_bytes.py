"""canonical_json writes exactly the bytes of its reference rule (the standard library's JSON
with sorted keys, compact separators and UTF-8 text), whichever encoder does the work."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from creditbus.contract.canonical import _prepare, canonical_json

CHARS = [chr(i) for i in range(0x250)] + ["\u2028", "\u2029", "\ud7ff", "\ue000", "\uffff",
                                         "😀", "中", "\x7f", "\U0010ffff", '"', "\\"]
FLOATS = [0.1, 1e16, 1e-7, 8.0, -0.0, 1.5e300, 123456789.125, 5e-324]


def reference(obj: Any) -> bytes:
    return json.dumps(_prepare(obj), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 6)
    if kind == 0:
        return "".join(rng.choice(CHARS) for _ in range(rng.randrange(12)))
    if kind == 1:
        return rng.randrange(-2**63, 2**63)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice([*FLOATS, rng.random() * 10 ** rng.randrange(-30, 30)])
    if kind == 4:
        return rng.randrange(-10**30, 10**30)  # beyond 64 bits
    if kind == 5:
        return rng.randrange(-1000, 1000)
    if kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {"".join(rng.choice(CHARS) for _ in range(rng.randrange(6))):
            random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_canonical_bytes_equal_the_reference_rule() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        value = random_value(rng)
        assert canonical_json(value) == reference(value), value


@pytest.mark.parametrize("value", [1e16, 1e-7, 2**64, {"b": 1.0, "a": [1e22]}])
def test_values_orjson_would_spell_otherwise_follow_the_reference(value: Any) -> None:
    assert canonical_json(value) == reference(value)


def test_a_lone_surrogate_is_still_an_error() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"name": "\ud800"})
