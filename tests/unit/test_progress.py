"""`creditbus report progress` against a real SQLite platform database of known content."""

from __future__ import annotations

import csv
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from creditbus.services.reports.progress import load_report
from openpyxl import load_workbook

from creditbus.catalog import Catalog, default_catalog, load_catalog
from creditbus.cli import main as cli_main
from creditbus.platformdb.db import open_db
from tests.platform_fill import BEIJING, PersonSpec, fill_platform

ANNEX_HEADER = ["序号", "单位", "是否建立重点人群信用档案", "出台文件名称",
                "下步打算（是否建立均须填写）", "备注"]
UNITS_24 = ["市委组织部", "市人社局", "市市场监管局", "市应急管理局", "市生态环境局",
            "市住建局", "市公安局", "市司法局", "市教育局", "市卫健委", "市财政局", "市税务局",
            "市消防救援支队", "市审计局", "市金融办", "市文广新旅局", "市民政局", "市科技局",
            "市行政审批局", "市委网信办", "市交通运输局", "市邮政管理局", "市自然资源局",
            "市商务局"]
JUSTICE_DOCS = ("赣州市律师信用档案管理办法（试行）", "关于开展律师执业信用评价工作的通知")
EXTRA_CATALOG = """
[[units]]
code = "justice"
documents = ["赣州市律师信用档案管理办法（试行）", "关于开展律师执业信用评价工作的通知"]
next_step = "2025年底前实现律师档案按月更新。"

[[units]]
code = "hrss"
remark = "职业技能人员档案另行建设"
"""


@pytest.fixture()
def platform(tmp_path: Path) -> tuple[str, list[PersonSpec]]:
    url = f"sqlite:///{tmp_path}/platform.db"
    return url, fill_platform(url)


@pytest.fixture()
def catalog_dir(tmp_path: Path) -> Path:
    extra = tmp_path / "catalog"
    extra.mkdir()
    (extra / "progress.toml").write_text(EXTRA_CATALOG, encoding="utf-8")
    return extra


def _run_report(monkeypatch: pytest.MonkeyPatch, url: str, catalog_dir: Path,
                out: Path, *extra: str) -> dict[str, Path]:
    monkeypatch.setenv("CREDITBUS_DATABASE_URL", url)
    monkeypatch.setenv("CREDITBUS_CATALOG_DIR", str(catalog_dir))
    assert cli_main.main(["report", "progress", "--out", str(out), *extra]) == 0
    found = {p.suffix: p for p in out.iterdir() if p.name.startswith("重点人群信用档案建设情况表")}
    found["facts.csv"] = next(out.glob("重点人群信用档案统计_*.csv"), Path("-"))
    return found


# -- expectations computed from the specs ---------------------------------------------------

def _expected(specs: list[PersonSpec], catalog: Catalog) -> dict[str, Any]:
    units_with_records = {r.unit for p in specs for r in p.records}
    cell: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"persons": set(), "records": 0, "retracted": 0, "cats": defaultdict(set),
                 "last": None})
    group_cats: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for p in specs:
        for r in p.records:
            c = cell[r.unit, r.group]
            # a retraction is a publication too: the record's published_at moves to it
            c["last"] = max(filter(None, (c["last"], r.retracted_at or r.published)))
            if r.retracted:
                c["retracted"] += 1
                continue
            c["records"] += 1
            c["persons"].add(p.key)
            c["cats"][p.key].add(r.category)
            group_cats[r.group][p.key].add(r.category)

    def score(per_person: dict[str, set[str]], group: str) -> float | str:
        if not per_person:
            return ""
        required = set(catalog.group(group).required_categories)
        return round(100 * sum(len(c & required) / len(required) for c in per_person.values())
                     / len(per_person), 1)

    return {"units": units_with_records, "cell": cell, "score": score, "group_cats": group_cats}


# -- the tests -------------------------------------------------------------------------------

def test_xlsx_rows_match_the_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  platform: tuple[str, list[PersonSpec]],
                                  catalog_dir: Path) -> None:
    url, specs = platform
    files = _run_report(monkeypatch, url, catalog_dir, tmp_path / "out")
    catalog = load_catalog(catalog_dir)
    want = _expected(specs, catalog)
    wb = load_workbook(files[".xlsx"])
    assert wb.sheetnames[:2] == ["建设情况表", "档案统计"]

    ws = wb["建设情况表"]
    assert ws["A1"].value == "重点人群信用档案建设情况表"
    assert ws["A1"].font.bold and "A1:F1" in {str(r) for r in ws.merged_cells.ranges}
    assert [c.value for c in ws[3]] == ANNEX_HEADER
    assert all(c.font.bold and c.border.left.style == "thin" for c in ws[3])
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=4, max_col=6)]
    rows = [r for r in rows if any(v not in (None, "") for v in r)]
    assert len(rows) == 24
    assert [r[0] for r in rows] == list(range(1, 25))
    assert [r[1] for r in rows] == UNITS_24
    by_name = {u.name_zh: u for u in catalog.progress_units()}
    for seq, name, established, documents, next_step, remark in rows:
        unit = by_name[name]
        assert unit.seq == seq
        assert established == ("是" if unit.code in want["units"] else "否"), name
        assert (documents or "") == "；".join(unit.documents)
        assert next_step == unit.next_step
        if established == "否":
            assert "尚未向平台推送档案信息" in remark
        else:
            assert not remark
    justice = rows[7]
    assert justice[1:5] == ["市司法局", "是", "；".join(JUSTICE_DOCS),
                            "2025年底前实现律师档案按月更新。"]
    assert rows[1][2] == "否" and rows[1][5] == "职业技能人员档案另行建设；尚未向平台推送档案信息"
    assert [r[1] for r in rows if r[2] == "是"] == ["市委组织部", "市市场监管局", "市应急管理局",
                                                    "市司法局", "市教育局"]
    assert ws.column_dimensions["D"].width >= 30 and ws["D4"].alignment.wrap_text
    assert ws["D4"].border.bottom.style == "thin"

    facts = wb["档案统计"]
    header = [c.value for c in facts[3]]
    assert header[:7] == ["序号", "单位", "重点人群", "建档人数", "档案记录数", "已撤回记录数",
                          "最近推送时间（北京时间）"]
    lines = {(r[1], r[2]): r for r in ([c.value for c in row]
                                       for row in facts.iter_rows(min_row=4)) if r[1]}
    for (unit_code, group), cell in want["cell"].items():
        unit, grp = catalog.unit(unit_code), catalog.group(group)
        line = lines[unit.name_zh, grp.name_zh]
        assert line[3:6] == [len(cell["persons"]), cell["records"], cell["retracted"]], line
        assert line[6] == cell["last"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        assert line[7] == want["score"](cell["cats"], group)
        assert line[8] == want["score"](want["group_cats"][group], group)
    # by hand: 律师 has 14 required items; 张 has 4 of them from 市司法局 (+1 from 章贡区), 李 1
    assert lines["市司法局", "律师"][7] == round(100 * (4 / 14 + 1 / 14) / 2, 1) == 17.9
    assert lines["市司法局", "律师"][8] == round(100 * (5 / 14 + 1 / 14) / 2, 1) == 21.4
    assert lines["市司法局", "律师"][3:6] == [2, 5, 1]
    # a unit responsible for groups that published nothing: zero rows, no completeness
    assert lines["市卫健委", "医师"][3:9] == [0, 0, 0, None, None, None]
    assert lines["市人社局", "（未配置负责人群）"][3] == 0
    assert lines["市住建局", "房地产中介从业人员"][3] == 0
    # a county is not in the annex, but its records are in the facts (no 序号)
    assert lines["章贡区", "律师"][0] in (None, "") and lines["章贡区", "律师"][3:6] == [1, 1, 0]


def test_csv_has_the_same_rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                               platform: tuple[str, list[PersonSpec]], catalog_dir: Path) -> None:
    url, _specs = platform
    files = _run_report(monkeypatch, url, catalog_dir, tmp_path / "out")
    raw = files[".csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with files[".csv"].open(encoding="utf-8-sig", newline="") as handle:
        csv_rows = list(csv.reader(handle))
    ws = load_workbook(files[".xlsx"])["建设情况表"]
    xlsx_rows = [["" if c.value is None else str(c.value) for c in row]
                 for row in ws.iter_rows(min_row=3, max_row=27, max_col=6)]
    assert csv_rows == xlsx_rows
    assert len(csv_rows) == 25 and csv_rows[0] == ANNEX_HEADER
    with files["facts.csv"].open(encoding="utf-8-sig", newline="") as handle:
        facts = list(csv.reader(handle))
    assert facts[0][:3] == ["序号", "单位", "重点人群"]
    assert ["8", "市司法局", "律师", "2", "5", "1"] == facts[[r[1:3] for r in facts].index(
        ["市司法局", "律师"])][:6]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                platform: tuple[str, list[PersonSpec]],
                                catalog_dir: Path) -> None:
    url, _specs = platform
    files = _run_report(monkeypatch, url, catalog_dir, tmp_path / "out", "--formats", "html")
    assert set(files) == {".html", "facts.csv"} and not files["facts.csv"].exists()
    text = files[".html"].read_text("utf-8")
    parser = _Tags()
    parser.feed(text)
    for tag, attrs in parser.tags:
        if tag in ("script", "link", "img", "iframe", "object", "embed", "use", "image"):
            assert not any("http" in (v or "") or "//" in (v or "") for v in attrs.values()), tag
    assert not any(tag == "script" for tag, _ in parser.tags)
    assert "@import" not in text and "url(" not in text
    assert "<title>重点人群信用档案建设情况表</title>" in text
    assert sum(1 for tag, _ in parser.tags if tag == "svg") >= 2
    for name in UNITS_24:
        assert name in text
    assert "档案完整度" in text


def test_empty_database_reports_every_unit_as_not_established(tmp_path: Path) -> None:
    db = open_db(f"sqlite:///{tmp_path}/none.db")
    try:
        report = load_report(default_catalog(), db)
    finally:
        db.close()
    assert not report.database_ready and "尚无档案数据" in report.subtitle
    assert [r.established_text for r in report.rows] == ["否"] * 24
    assert not (tmp_path / "none.db").exists()  # reading never creates the database


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["report", "progress", "--formats", "pdf"])
    assert exc.value.code == 2
