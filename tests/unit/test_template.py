"""The unit's blank template: the importer's headers, drop-down lists from the catalog on a
hidden sheet, Chinese instructions; a template filled in (within its lists) imports cleanly
through the real importer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from creditbus.catalog import Catalog, default_catalog
from creditbus.cli.main import main
from creditbus.devtools.sample import sample_rows
from creditbus.publish.row_events import CatalogNames, map_headers
from creditbus.publish.template import (
    DATA_SHEET,
    INSTRUCTIONS_SHEET,
    LISTS_SHEET,
    write_template,
)

CATALOG = default_catalog()
CODE_COLUMNS = {"人群类别": "group", "信息类别": "category", "严重程度": "severity",
                "重点领域": "domain"}


def multi_group_unit(catalog: Catalog) -> str:
    return next(u.code for u in catalog.units if len(u.groups) > 1)


def validations(path: Path) -> dict[str, list[str]]:
    """Header of each validated column -> the values its drop-down list allows."""
    book = load_workbook(path)
    data, lists = book[DATA_SHEET], book[LISTS_SHEET]
    headers = [c.value for c in data[1]]
    out: dict[str, list[str]] = {}
    for validation in data.data_validations.dataValidation:
        assert validation.type == "list" and validation.showErrorMessage
        assert validation.errorStyle == "stop"
        sheet, cells = validation.formula1.split("!")
        assert sheet.strip("'") == LISTS_SHEET  # not inline: no 255-character limit
        first, last = cells.replace("$", "").split(":")
        values = [row[0].value for row in lists[f"{first}:{last}"]]
        target = str(validation.sqref).split(":")[0]
        column = headers[data[target].column - 1]
        assert str(validation.sqref) == f"{target}:{target.rstrip('0123456789')}10001"
        out[column] = values
    return out


@pytest.mark.parametrize("unit", ["justice", multi_group_unit(CATALOG)])
def test_headers_are_the_importers_and_code_columns_only_take_catalog_names(
    tmp_path: Path, unit: str,
) -> None:
    path = write_template(tmp_path / "t.xlsx", CATALOG, unit)
    book = load_workbook(path)
    assert book.sheetnames == [DATA_SHEET, INSTRUCTIONS_SHEET, LISTS_SHEET]
    assert book[LISTS_SHEET].sheet_state == "hidden"
    headers = [c.value for c in book[DATA_SHEET][1]]
    mapped = map_headers(headers)  # every header is one the importer accepts
    assert mapped.unknown == () and len(mapped.positions) == len(headers)
    assert book[DATA_SHEET].column_dimensions["B"].number_format == "@"  # 身份证号码 as text

    lists = validations(path)
    entry = CATALOG.unit(unit)
    assert lists["人群类别"] == [CATALOG.group(g).name_zh for g in entry.groups]
    assert lists["严重程度"] == [s.name_zh for s in CATALOG.severities]
    assert lists["重点领域"] == [d.name_zh for d in CATALOG.domains]
    allowed = set().union(*(CATALOG.group(g).required_categories for g in entry.groups))
    assert lists["信息类别"] == [c.name_zh for c in CATALOG.categories if c.code in allowed]
    assert len("、".join(lists["信息类别"])) > 0
    names = CatalogNames(CATALOG)
    for header, key in CODE_COLUMNS.items():  # each choice is a code the importer resolves
        index = getattr(names, {"group": "groups", "category": "categories",
                                "severity": "severities", "domain": "domains"}[key])
        assert all(names.lookup(index, value) for value in lists[header]), header

    notes = [c.value for row in book[INSTRUCTIONS_SHEET].iter_rows() for c in row if c.value]
    assert any(entry.name_zh in str(n) for n in notes)
    assert "身份证号码" in notes and "必填" in notes


def test_group_option_narrows_the_lists_and_refuses_a_group_of_another_unit(
    tmp_path: Path,
) -> None:
    unit = multi_group_unit(CATALOG)
    group = CATALOG.unit(unit).groups[1]
    path = write_template(tmp_path / "g.xlsx", CATALOG, unit, group)
    lists = validations(path)
    assert lists["人群类别"] == [CATALOG.group(group).name_zh]
    wanted = set(CATALOG.group(group).required_categories)
    assert lists["信息类别"] == [c.name_zh for c in CATALOG.categories if c.code in wanted]
    other = next(g.code for g in CATALOG.groups if g.code not in CATALOG.unit(unit).groups)
    assert main(["template", "--unit", unit, "--group", other,
                 "--out", str(tmp_path / "x.xlsx")]) == 2
    assert not (tmp_path / "x.xlsx").exists()


def fill(path: Path, rows: list[dict[str, Any]]) -> None:
    """Type the rows into the template as a clerk would: codes picked from the lists (names)."""
    book = load_workbook(path)
    sheet = book[DATA_SHEET]
    headers = [c.value for c in sheet[1]]
    lists = validations(path)
    for row in rows:
        cells = []
        for header in headers:
            value = row.get(header)
            if header == "人群类别" and value is not None and CATALOG.has("group", value):
                value = CATALOG.group(value).name_zh
            if header == "信息类别" and value is not None and CATALOG.has("category", value):
                value = CATALOG.category(value).name_zh
            if header in lists and value is not None:
                assert value in lists[header], (header, value)  # Excel would accept it
            cells.append(value)
        sheet.append(cells)
    assert not set().union(*rows) - set(headers), "a sample column the template lacks"
    book.save(path)


def test_a_filled_template_imports_through_the_real_importer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    unit = multi_group_unit(CATALOG)
    assert main(["template", "--unit", unit, "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.xlsx")
    assert path.name == f"{CATALOG.unit(unit).name_zh}信用档案填报模板.xlsx"
    rows = sample_rows(unit, 60, seed=4)
    fill(path, rows)
    capsys.readouterr()
    assert main(["publish", "--unit", unit, str(path), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"{len(rows)} rows: {len(rows)} valid (dry run, nothing published), 0 rejected" in err
