"""Load the catalog from the packaged TOML files plus optional extra files, and validate it.

Two layers: the packaged `data/*.toml`, then every `*.toml` in `extra_dir` (sorted by name; the
deployment's `CREDITBUS_CATALOG_DIR`). Any file may hold any of the arrays `units`, `groups`,
`categories`, `domains`, `severities`. Within a layer a code is defined once. An extra entry whose
code exists in the packaged layer overrides it field by field (the keys it gives replace the
packaged values, lists included), so an extra file can add a county, a unit or a group, or fill in
a unit's `documents`, without a code change.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from creditbus.catalog.errors import CatalogError
from creditbus.catalog.models import Catalog, Category, Domain, Group, Severity, Unit

KINDS: dict[str, tuple[str, type[BaseModel]]] = {
    # array name in TOML -> (singular used in messages, model)
    "units": ("unit", Unit),
    "groups": ("group", Group),
    "categories": ("category", Category),
    "domains": ("domain", Domain),
    "severities": ("severity", Severity),
}
PACKAGED_FILES = ("domains.toml", "severities.toml", "categories.toml", "groups.toml", "units.toml")

_Merged = dict[str, dict[str, tuple[dict[str, Any], str]]]  # kind -> code -> (raw, origin file)


def load_catalog(extra_dir: Path | None = None) -> Catalog:
    """Read, merge and validate the catalog; raise `CatalogError` listing every problem."""
    packaged = resources.files(__package__).joinpath("data")
    sources = [(name, packaged.joinpath(name).read_text("utf-8")) for name in PACKAGED_FILES]
    layers = [sources]
    if extra_dir is not None:
        layers.append(_extra_sources(Path(extra_dir)))

    problems: list[str] = []
    merged: _Merged = {kind: {} for kind in KINDS}
    for layer in layers:
        _merge_layer(layer, merged, problems, first=layer is sources)
    entries, origins = _validate_entries(merged, problems)
    if problems:
        raise CatalogError(problems)
    _check_references(entries, origins, problems)
    if problems:
        raise CatalogError(problems)
    return Catalog(**entries)


@functools.lru_cache(maxsize=4)
def default_catalog(extra_dir: Path | None = None) -> Catalog:
    """The catalog, loaded once per `extra_dir`.

    Without an argument the extra directory is the settings' `catalog_dir`
    (`CREDITBUS_CATALOG_DIR`, read at the first call); pass `settings.catalog_dir` to be
    explicit. `default_catalog.cache_clear()` forgets loaded catalogs.
    """
    if extra_dir is None:
        from creditbus.settings import Settings

        extra_dir = Settings.from_env().catalog_dir
    return load_catalog(extra_dir)


def _extra_sources(extra_dir: Path) -> list[tuple[str, str]]:
    if not extra_dir.is_dir():
        raise CatalogError(f"{extra_dir}: the extra catalog directory does not exist")
    sources = []
    for path in sorted(extra_dir.glob("*.toml")):
        try:
            sources.append((str(path), path.read_text("utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{path}: cannot be read ({exc})") from exc
    return sources


def _merge_layer(
    sources: Iterable[tuple[str, str]], merged: _Merged, problems: list[str], *, first: bool
) -> None:
    seen: dict[tuple[str, str], str] = {}  # (kind, code) -> file, within this layer
    for origin, text in sources:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{origin}: not valid TOML ({exc})")
            continue
        for key, items in data.items():
            if key not in KINDS:
                problems.append(
                    f"{origin}: unknown array {key!r} (expected one of {', '.join(KINDS)})"
                )
                continue
            singular = KINDS[key][0]
            if not isinstance(items, list):
                problems.append(f"{origin}: {key!r} must be an array of tables ([[{key}]])")
                continue
            for number, raw in enumerate(items, 1):
                code = raw.get("code") if isinstance(raw, dict) else None
                if not isinstance(code, str) or not code:
                    problems.append(f"{origin}: {singular} #{number} has no code")
                    continue
                if (key, code) in seen:
                    problems.append(
                        f"{origin}: duplicate {singular} code {code!r} "
                        f"(already defined in {seen[key, code]})"
                    )
                    continue
                seen[key, code] = origin
                existing = merged[key].get(code)
                if existing is not None and not first:
                    raw = {**existing[0], **raw}  # field-by-field override of the packaged entry
                merged[key][code] = (raw, origin)


def _validate_entries(
    merged: _Merged, problems: list[str]
) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[str, str], str]]:
    entries: dict[str, tuple[Any, ...]] = {}
    origins: dict[tuple[str, str], str] = {}
    for key, (singular, model) in KINDS.items():
        valid = []
        for code, (raw, origin) in merged[key].items():
            origins[key, code] = origin
            try:
                valid.append(model.model_validate(raw))
            except ValidationError as exc:
                for err in exc.errors():
                    where = ".".join(str(part) for part in err["loc"])
                    detail = f"{where}: {err['msg']}" if where else err["msg"]
                    problems.append(f"{origin}: {singular} {code!r}: {detail}")
        entries[key] = tuple(valid)
    return entries, origins


def _check_references(
    entries: dict[str, tuple[Any, ...]], origins: dict[tuple[str, str], str], problems: list[str]
) -> None:
    codes = {key: {e.code for e in items} for key, items in entries.items()}

    def problem(key: str, code: str, text: str) -> None:
        problems.append(f"{origins[key, code]}: {KINDS[key][0]} {code!r}: {text}")

    for unit in entries["units"]:
        for group in unit.groups:
            if group not in codes["groups"]:
                problem("units", unit.code, f"group {group!r} is not defined")
    for group in entries["groups"]:
        for category in group.required_categories:
            if category not in codes["categories"]:
                problem("groups", group.code, f"category {category!r} is not defined")
        if group.default_domain is not None and group.default_domain not in codes["domains"]:
            problem("groups", group.code, f"domain {group.default_domain!r} is not defined")

    _check_seq(entries["units"], origins, problems)
    _check_unique_names(entries, origins, problems)
    symbols: dict[str, str] = {}
    for severity in entries["severities"]:
        if severity.symbol in symbols:
            problem("severities", severity.code, f"symbol {severity.symbol!r} is also used by "
                    f"{symbols[severity.symbol]!r}")
        symbols[severity.symbol] = severity.code


def _check_seq(
    units: tuple[Unit, ...], origins: dict[tuple[str, str], str], problems: list[str]
) -> None:
    by_seq: dict[int, str] = {}
    for unit in units:
        if unit.seq is None:
            continue
        if unit.seq in by_seq:
            problems.append(
                f"{origins['units', unit.code]}: unit {unit.code!r}: seq {unit.seq} is also "
                f"used by unit {by_seq[unit.seq]!r}"
            )
        else:
            by_seq[unit.seq] = unit.code
    missing = sorted(set(range(1, len(by_seq) + 1)) - set(by_seq))
    if missing:
        for seq, code in sorted(by_seq.items()):
            if seq > len(by_seq):
                problems.append(
                    f"{origins['units', code]}: unit {code!r}: seq {seq} leaves a gap; "
                    f"progress-table seq must run 1..N without gaps (missing {missing})"
                )


def _check_unique_names(
    entries: dict[str, tuple[Any, ...]], origins: dict[tuple[str, str], str], problems: list[str]
) -> None:
    """Names and aliases of units and of groups must be unambiguous (imports look them up)."""
    for key in ("units", "groups"):
        owner: dict[str, str] = {}
        for entry in entries[key]:
            for name in (entry.name_zh, *entry.aliases):
                if name in owner and owner[name] != entry.code:
                    problems.append(
                        f"{origins[key, entry.code]}: {KINDS[key][0]} {entry.code!r}: name "
                        f"{name!r} is also used by {owner[name]!r}"
                    )
                owner.setdefault(name, entry.code)
