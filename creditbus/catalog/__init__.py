"""The catalog: units, groups, record categories, domains and severities, configured as TOML."""

from creditbus.catalog.errors import CatalogError, UnknownCodeError
from creditbus.catalog.loader import default_catalog, load_catalog
from creditbus.catalog.models import (
    CODE_PATTERN,
    Catalog,
    Category,
    Domain,
    Group,
    Severity,
    Unit,
)

__all__ = [
    "CODE_PATTERN",
    "Catalog",
    "CatalogError",
    "Category",
    "Domain",
    "Group",
    "Severity",
    "Unit",
    "UnknownCodeError",
    "default_catalog",
    "load_catalog",
]
