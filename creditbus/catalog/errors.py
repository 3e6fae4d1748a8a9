"""Errors of the catalog: invalid configuration, and lookups of codes that do not exist."""

from __future__ import annotations

from creditbus.errors import ConfigError


class CatalogError(ConfigError, ValueError):
    """The catalog data is invalid. `problems` lists every problem found, each naming its file
    and entry (e.g. ``units.toml: unit 'justice': group 'lawyers' is not defined``)."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            text = f"invalid catalog: {self.problems[0]}"
        else:
            text = "invalid catalog:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


class UnknownCodeError(ConfigError, KeyError):
    """A lookup named a code the catalog does not define."""

    def __init__(self, kind: str, code: str) -> None:
        super().__init__(kind, code)
        self.kind = kind
        self.code = code

    def __str__(self) -> str:
        return f"unknown {self.kind} code {self.code!r}"
