"""Administrative divisions: valid province prefixes and the named codes of Ganzhou."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# GB/T 2260 province-level prefixes (incl. 71 Taiwan, 81 Hong Kong, 82 Macao).
PROVINCE_PREFIXES: frozenset[str] = frozenset(
    f"{n:02d}"
    for n in (
        *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
        *range(50, 55), *range(61, 66), 71, 81, 82,
    )
)


@dataclass(frozen=True)
class DivisionTable:
    """Known division names and the prefixes that mean 'in Ganzhou'."""

    names: dict[str, str]
    ganzhou_prefixes: tuple[str, ...]
    retired: frozenset[str]

    def name(self, code: str) -> str | None:
        return self.names.get(code)

    def in_ganzhou(self, code: str) -> bool:
        return code.startswith(self.ganzhou_prefixes) or code in self.names


@lru_cache(maxsize=1)
def division_table() -> DivisionTable:
    """The packaged `data/divisions.toml`, read once."""
    raw = resources.files(__package__).joinpath("data/divisions.toml").read_text("utf-8")
    data = tomllib.loads(raw)
    return DivisionTable(
        names=dict(data.get("divisions", {})),
        ganzhou_prefixes=tuple(data.get("ganzhou_prefixes", ())),
        retired=frozenset(data.get("retired", {}).get("codes", ())),
    )


def province_is_valid(division_code: str) -> bool:
    return division_code[:2] in PROVINCE_PREFIXES
