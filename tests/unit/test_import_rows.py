"""Spreadsheet import without a broker: headers, encodings, row -> event, the error report,
sample data, and `creditbus publish --dry-run`."""

from __future__ import annotations

import argparse
import io
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError

from creditbus.catalog import default_catalog
from creditbus.cli import publish_cmd
from creditbus.contract import reasons as R
from creditbus.contract.canonical import derive_event_id
from creditbus.contract.validation import EventRejected
from creditbus.contract.wire import Wire
from creditbus.devtools.sample import HEADERS, sample_rows, write_rows
from creditbus.identity import make_resident_id
from creditbus.publish.messages import shown
from creditbus.publish.producer import EventEncoder
from creditbus.publish.row_events import (
    BAD_ACTION,
    BAD_ATTRIBUTES,
    BAD_BOOLEAN,
    BAD_DATE,
    BAD_NUMBER,
    COLUMNS,
    ID_STORED_AS_NUMBER,
    HeaderError,
    RowConverter,
    RowError,
    column_for_field,
    keyed_row,
    map_headers,
    parse_date,
    parse_decimal,
    parse_map,
)
from creditbus.publish.spreadsheet import TableError, decode_csv_bytes, open_table

CATALOG = default_catalog()
CST = timezone(timedelta(hours=8))
ID = "360702198205140314"
ID_X = make_resident_id("360702", date(1985, 3, 14), 3)
NS = "cn.gov.ganzhou.creditbus"

PENALTY_ROW: dict[str, Any] = {
    "姓名": "刘建华",
    "身份证号码": ID,
    "人群类别": "律师",
    "信息类别": "执业处罚情况",
    "记录编号": "SFJ-CF-2024-0007",
    "严重程度": "一般",
    "决定书文号": "赣市司罚决字〔2024〕7号",
    "违法事实": "代理民事案件期间私自接受委托、私自收取费用8000元。",
    "处罚依据": "《中华人民共和国律师法》第四十八条第（一）项",
    "处罚类别": "警告、罚款，没收违法所得",
    "处罚内容": "给予警告，处罚款人民币5000元，没收违法所得8000元。",
    "罚款金额（元）": "5,000.00",
    "处罚决定日期": "2024/2/26",
    "公示截止期": "2025年2月26日",
    "处罚机关": "赣州市司法局",
    "处罚机关统一社会信用代码": "11360700014567892J",
    "工作单位": "江西赣江律师事务所",
    "统一社会信用代码": "31360702md01234541",
    "操作(新增/撤销)": "新增",
}


def convert(row: dict[str, Any], unit: str = "justice") -> dict[str, Any]:
    return RowConverter(CATALOG, unit).convert(keyed_row(row))


def row_error(row: dict[str, Any], unit: str = "justice") -> RowError:
    with pytest.raises(RowError) as info:
        convert(row, unit)
    return info.value


# --- headers -------------------------------------------------------------------------------------


def test_chinese_headers_map_to_columns() -> None:
    headers = ["序号", "姓名", "身份证号码", "人群类别", "信息类别", "记录编号", "罚款金额（元）",
               "操作（新增/撤销）", " 发生日期 ", "处罚决定日期*"]
    mapped = map_headers(headers)
    assert mapped.positions["name"] == 1
    assert mapped.positions["fine_amount"] == 6  # full-width brackets
    assert mapped.positions["action"] == 7
    assert mapped.positions["occurred_date"] == 8  # surrounding spaces
    assert mapped.positions["decision_date"] == 9  # a required-mark
    assert mapped.unknown == ("序号",)
    assert mapped.header_of("fine_amount") == "罚款金额（元）"
    assert mapped.header_of("authority") == "处罚机关"  # absent: the documented name


def test_english_headers_and_aliases_map_to_the_same_columns() -> None:
    english = ["name", "ID_Number", "group", "category", "record_id", "fine_amount", "action"]
    chinese = ["姓名", "公民身份号码", "重点人群", "记录类别", "信息编号", "罚款金额", "操作"]
    assert map_headers(english).positions == map_headers(chinese).positions
    assert map_headers(english).positions["id_number"] == 1


def test_every_column_has_a_unique_chinese_and_english_header() -> None:
    zh = [c.zh for c in COLUMNS]
    en = [c.en for c in COLUMNS]
    assert len(set(zh)) == len(zh) and len(set(en)) == len(en)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text("utf-8")
    for column in COLUMNS:
        assert column.zh in doc and f"`{column.en}`" in doc, column.key


def test_duplicate_and_missing_headers_are_file_errors() -> None:
    with pytest.raises(HeaderError, match="both mean"):
        map_headers(["姓名", "name", "身份证号码", "人群类别", "信息类别", "记录编号"])
    with pytest.raises(HeaderError, match="身份证号码"):
        map_headers(["姓名", "人群类别", "信息类别", "记录编号"])
    with pytest.raises(HeaderError, match="人群类别"):
        map_headers(["姓名", "身份证号码", "信息类别", "记录编号"])
    # a unit with a single group may leave 人群类别 out
    map_headers(["姓名", "身份证号码", "信息类别", "记录编号"], group_optional=True)


# --- CSV encodings -------------------------------------------------------------------------------


def _csv_text(rows: list[dict[str, Any]]) -> str:
    headers = list(rows[0])
    lines = [",".join(headers)]
    lines += [",".join(str(r.get(h, "")).replace(",", "，") for h in headers) for r in rows]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_csv_in_every_accepted_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(_csv_text([PENALTY_ROW]).encode(encoding))
    with open_table(path) as table:
        assert table.headers[0] == "姓名"  # no BOM left on the first header
        rows = list(table.rows())
        assert table.total == 1
    assert len(rows) == 1 and rows[0][0] == 2
    values = map_headers(table.headers).values(rows[0][1])
    datum = RowConverter(CATALOG, "justice").convert(values)
    assert datum["person"]["name"] == "刘建华"
    assert datum["content"][1]["authority"] == "赣州市司法局"


def test_decode_csv_bytes() -> None:
    text = "姓名,身份证号码\n张三,1\n"
    assert decode_csv_bytes(b"\xef\xbb\xbf" + text.encode()) == text
    assert decode_csv_bytes(text.encode("gbk")) == text
    assert decode_csv_bytes("𠀀,赣".encode("gb18030")) == "𠀀,赣"  # beyond GBK


def test_tables_skip_blank_rows_and_refuse_other_files(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n姓名,身份证号码\n,\n张三,x\n\n", encoding="utf-8")
    with open_table(path) as table:
        assert table.header_row == 2
        assert [n for n, _ in table.rows()] == [4]
    with pytest.raises(TableError, match="xlsx"):
        open_table(tmp_path / "old.xls")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(TableError, match="header"):
        open_table(tmp_path / "empty.csv")
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    with pytest.raises(TableError):
        open_table(tmp_path / "bad.xlsx")


def test_xlsx_cells_keep_their_types(tmp_path: Path) -> None:
    row = dict(PENALTY_ROW, 处罚决定日期=date(2024, 2, 26), **{"罚款金额（元）": 5000})
    path = write_rows(tmp_path / "p.xlsx", [row], headers=list(row))
    with open_table(path) as table:
        ((number, cells),) = list(table.rows())
    values = map_headers(table.headers).values(cells)
    assert number == 2
    assert isinstance(values["decision_date"], datetime)
    assert values["fine_amount"] == 5000
    datum = RowConverter(CATALOG, "justice").convert(values)
    assert datum["content"][1]["decision_date"] == date(2024, 2, 26)
    assert datum["content"][1]["fine_amount"] == Decimal("5000.00")


# --- row -> event --------------------------------------------------------------------------------


def test_penalty_row_becomes_an_event() -> None:
    datum = convert(PENALTY_ROW)
    assert datum["unit"] == "justice"
    assert datum["group"] == "lawyer" and datum["category"] == "practice_penalty"
    assert datum["severity"] == "GENERAL"
    assert datum["action"] == "UPSERT"
    assert datum["person"] == {"id_number": ID, "name": "刘建华",
                               "organisation": "江西赣江律师事务所",
                               "organisation_uscc": "31360702MD01234541"}
    name, body = datum["content"]
    assert name == f"{NS}.Penalty"
    assert body["penalty_types"] == ["警告", "罚款", "没收违法所得"]
    assert body["fine_amount"] == Decimal("5000.00")
    assert body["decision_date"] == date(2024, 2, 26)
    assert body["disclosure_until"] == date(2025, 2, 26)
    # no 发生日期: the decision day at 00:00 in China
    assert datum["occurred_at"] == datetime(2024, 2, 26, tzinfo=CST)
    assert "event_id" not in datum and "published_at" not in datum


def test_codes_work_as_well_as_chinese_names() -> None:
    coded = dict(PENALTY_ROW, 人群类别="lawyer", 信息类别="practice_penalty", 严重程度="GENERAL")
    assert convert(coded) == convert(PENALTY_ROW)
    assert convert(dict(PENALTY_ROW, 严重程度="general"))["severity"] == "GENERAL"


def test_retraction_row_has_no_content() -> None:
    row = {k: PENALTY_ROW[k] for k in ("姓名", "身份证号码", "人群类别", "信息类别", "记录编号")}
    row.update({"操作(新增/撤销)": "撤销", "发生日期": "2024-03-20"})
    datum = convert(row)
    assert datum["action"] == "RETRACT" and datum["content"] is None
    assert datum["occurred_at"] == datetime(2024, 3, 20, tzinfo=CST)


def test_rows_of_other_content_kinds() -> None:
    base = {k: PENALTY_ROW[k] for k in ("姓名", "身份证号码", "人群类别", "工作单位")}
    career = convert(dict(base, 信息类别="从业履历", 记录编号="C1", 职务岗位="专职律师",
                          起始日期="2016-07-01"))
    assert career["content"] == (f"{NS}.CareerEntry", {
        "organisation": "江西赣江律师事务所",  # 从业单位 falls back to 工作单位
        "position": "专职律师", "start_date": date(2016, 7, 1), "end_date": None})
    note = convert(dict(base, 信息类别="社会服务信息", 记录编号="N1", 事项="法律援助",
                        具体内容="值班服务", 发生日期="20240301",
                        扩展属性="hours=24；地点：章贡区"))
    assert note["content"][1] == {"title": "法律援助", "detail": "值班服务",
                                  "event_date": date(2024, 3, 1),
                                  "attributes": {"hours": "24", "地点": "章贡区"}}
    complaint = convert(dict(base, 信息类别="收到投诉申诉情况", 记录编号="T1",
                             受理日期=45299, 投诉事由="服务态度差", 是否属实="否"))
    assert complaint["content"][1]["received_date"] == date(2024, 1, 8)  # Excel serial day
    assert complaint["content"][1]["substantiated"] is False
    assert complaint["content"][1]["outcome"] is None
    assessment = convert(dict(base, 信息类别="年度考核结果", 记录编号="A1", 考核年度="2023年",
                              考核结果="称职"))
    assert assessment["content"][1] == {"year": 2023, "result": "称职", "assessor": None}
    assert assessment["occurred_at"] == datetime(2023, 12, 31, tzinfo=CST)


def test_teacher_training_and_qualification_rows() -> None:
    base = {"姓名": "陈晓燕", "身份证号码": "360731199009030464", "人群类别": "教师",
            "工作单位": "于都县第二中学"}
    training = convert(dict(base, 信息类别="教育培训记录", 记录编号="P1", 培训项目="国培计划",
                            培训机构="赣南师范大学", 学时="24.5", 完成日期="2023-08-25"), "edu")
    assert training["content"][1]["hours"] == 24.5
    qualification = convert(dict(base, 信息类别="资质认定", 记录编号="Q1",
                                 证书编号=20133607312000461,
                                 资格名称="高级中学教师资格", 发证机关="江西省教育厅",
                                 发证日期="2013-06-30", 证书状态="有效"), "edu")
    assert qualification["content"][1]["certificate_number"] == "20133607312000461"


@pytest.mark.parametrize(
    ("change", "code", "column"),
    [
        ({"身份证号码": 360702198205140314}, ID_STORED_AS_NUMBER, "id_number"),
        ({"身份证号码": " "}, R.EMPTY_FIELD, "id_number"),
        ({"处罚决定日期": "2024-13-45"}, BAD_DATE, "decision_date"),
        ({"处罚决定日期": "昨天"}, BAD_DATE, "decision_date"),
        ({"罚款金额（元）": "五千"}, BAD_NUMBER, "fine_amount"),
        ({"罚款金额（元）": "1.005"}, BAD_NUMBER, "fine_amount"),
        ({"操作(新增/撤销)": "作废"}, BAD_ACTION, "action"),
        ({"人群类别": "宇航员"}, R.UNKNOWN_GROUP, "group"),
        ({"信息类别": "不存在的类别"}, R.UNKNOWN_CATEGORY, "category"),
        ({"信息类别": ""}, R.EMPTY_FIELD, "category"),
        ({"严重程度": "很严重"}, R.UNKNOWN_SEVERITY, "severity"),
        ({"重点领域": "外太空"}, R.UNKNOWN_DOMAIN, "domain"),
        ({"决定书文号": None}, R.EMPTY_FIELD, "decision_number"),
        ({"处罚类别": "、"}, R.EMPTY_FIELD, "penalty_types"),
        ({"记录编号": ""}, R.EMPTY_FIELD, "record_id"),
    ],
)
def test_row_errors_name_their_column(change: dict[str, Any], code: str, column: str) -> None:
    exc = row_error(dict(PENALTY_ROW, **change))
    assert (exc.code, exc.column) == (code, column)
    assert ID not in exc.message


def test_cell_parsers() -> None:
    assert parse_date(datetime(2024, 2, 26, 9, 0), "decision_date") == date(2024, 2, 26)
    assert parse_date("2024-02-26 00:00:00", "decision_date") == date(2024, 2, 26)
    assert parse_date("２０２４－０２－２６", "decision_date") == date(2024, 2, 26)
    assert parse_date(20240226, "decision_date") == date(2024, 2, 26)
    assert parse_decimal(5000, "fine_amount") == Decimal("5000.00")
    assert parse_decimal(1234.5, "fine_amount") == Decimal("1234.50")
    assert parse_decimal("￥3,000元", "fine_amount") == Decimal("3000.00")
    assert parse_map('{"a": "1"}', "attributes") == {"a": "1"}
    with pytest.raises(RowError) as info:
        parse_map("no separator here", "attributes")
    assert info.value.code == BAD_ATTRIBUTES
    exc = row_error({"姓名": "陈", "身份证号码": ID, "人群类别": "律师",
                     "信息类别": "收到投诉申诉情况", "记录编号": "T", "受理日期": "2024-01-08",
                     "投诉事由": "x", "是否属实": "也许"})
    assert exc.code == BAD_BOOLEAN


def test_unit_column_and_single_group_default() -> None:
    row = {k: v for k, v in PENALTY_ROW.items() if k != "人群类别"}
    assert convert(row)["group"] == "lawyer"  # 市司法局 publishes for lawyers only
    with pytest.raises(RowError):
        convert(row, "zhanggong")  # a county has eleven groups: the column is needed
    assert convert(dict(PENALTY_ROW, 填报单位="市教育局"))["unit"] == "edu"


def test_validation_fields_map_back_to_columns() -> None:
    assert column_for_field("person.id_number", "penalty") == "id_number"
    assert column_for_field("content.decision_date", "penalty") == "decision_date"
    assert column_for_field("content.title", "reward") == "reward_title"
    assert column_for_field("content.title", "note") == "note_title"
    assert column_for_field("content.organisation", "career") == "career_organisation"
    assert column_for_field("content.event_date", "note") == "occurred_date"
    assert column_for_field("occurred_at", None) == "occurred_date"
    assert column_for_field("content", "penalty") == "category"
    assert column_for_field(None, None) is None


# --- stable event ids ----------------------------------------------------------------------------


def test_reimporting_gives_the_same_event_ids() -> None:
    rows = sample_rows("health", 200, seed=3)
    first = EventEncoder("health", CATALOG, Wire())
    second = EventEncoder("health", CATALOG, Wire())
    ids1 = [first.prepare(convert(r, "health"), now_ms=1_735_700_000_000).event_id for r in rows]
    ids2 = [second.prepare(convert(r, "health")).event_id for r in rows]  # another day
    assert ids1 == ids2
    assert len(set(ids1)) == len(ids1)
    prepared = first.prepare(convert(rows[0], "health"))
    assert derive_event_id(prepared.datum) == prepared.event_id  # recomputable by consumers
    assert Wire().decode(prepared.value).datum == prepared.datum
    assert prepared.key == prepared.record_id.encode()


def test_encoder_rejects_before_anything_is_sent() -> None:
    encoder = EventEncoder("justice", CATALOG, Wire())
    with pytest.raises(EventRejected) as info:
        encoder.prepare(convert(dict(PENALTY_ROW, 身份证号码=ID[:17] + "9")))
    assert info.value.code == "ID_CHECKSUM"
    with pytest.raises(EventRejected) as info:
        encoder.prepare({"unit": "justice"})
    assert info.value.code == R.SCHEMA_MISMATCH
    with pytest.raises(EventRejected) as info:
        encoder.prepare(convert(PENALTY_ROW, "edu") | {"unit": "edu"})
    assert info.value.code == R.TOPIC_UNIT_MISMATCH
    # the JSON form of the content is accepted too
    datum = convert(PENALTY_ROW)
    name, body = datum["content"]
    datum["content"] = {"Penalty": body}
    assert encoder.prepare(datum).datum["content"][0] == name


# --- sample rows ---------------------------------------------------------------------------------


def test_sample_rows_are_valid_seeded_and_realistic() -> None:
    rows = sample_rows("zhanggong", 600, seed=9)
    assert rows == sample_rows("zhanggong", 600, seed=9)
    assert rows != sample_rows("zhanggong", 600, seed=10)
    encoder = EventEncoder("zhanggong", CATALOG, Wire())
    actions: Counter[str] = Counter()
    groups, kinds, ids = set(), set(), set()
    for row in rows:
        assert set(row) <= set(HEADERS)
        prepared = encoder.prepare(convert(row, "zhanggong"))
        actions[prepared.datum["action"]] += 1
        groups.add(prepared.datum["group"])
        content = prepared.datum["content"]
        kinds.add(content[0] if content else None)
        ids.add(prepared.event_id)
        assert prepared.valid.resident.in_ganzhou
    assert len(ids) == len(rows)
    assert actions["RETRACT"] >= 3
    records = Counter(r["记录编号"] for r in rows if r["操作(新增/撤销)"] == "新增")
    assert any(count > 1 for count in records.values())  # updates of earlier records
    assert len(groups) == 11
    assert len(kinds) == 9  # eight content types and retractions


def test_sample_rows_need_a_unit_with_groups() -> None:
    with pytest.raises(ValueError, match="no group"):
        sample_rows("hrss", 10, seed=1)


# --- the command (dry run) -----------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    publish_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["publish", *argv])
    err = io.StringIO()
    return publish_cmd.run(args, out=err), err.getvalue()


_FULL_ID = re.compile(r"\d{17}[\dX]")


def test_dry_run_of_a_clean_file(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "edu.csv", sample_rows("edu", 120, seed=4))
    code, err = run_cli("--unit", "edu", str(path), "--dry-run", "--progress-every", "50")
    assert code == 0, err
    assert "50/120 rows, 50 valid, 0 errors" in err
    assert "120 rows: 120 valid (dry run, nothing published), 0 rejected" in err
    assert not (tmp_path / "edu.csv.errors.csv").exists()


def test_dry_run_with_bad_rows_writes_the_error_report(tmp_path: Path) -> None:
    rows = sample_rows("justice", 40, seed=8)
    broken = {
        3: ("身份证号码", rows[3]["身份证号码"][:17] + ("0" if rows[3]["身份证号码"][17] != "0"
                                                   else "1"), "ID_CHECKSUM"),
        5: ("身份证号码", rows[5]["身份证号码"][:6] + rows[5]["身份证号码"][8:17], "ID_LEGACY_15"),
        8: ("人群类别", "教师", R.UNIT_NOT_RESPONSIBLE),
        13: ("姓名", "张\u200b三", R.BAD_NAME),
        21: ("发生日期", "2999-01-01", R.FUTURE_DATE),
        30: ("统一社会信用代码", "91360702MA3AKL0I68", "USCC_CHARSET"),
    }
    for index, (column, value, _) in broken.items():
        rows[index] = dict(rows[index], **{column: value})
    path = write_rows(tmp_path / "justice.csv", rows, encoding="gb18030")
    report = tmp_path / "report.csv"
    code, err = run_cli("--unit", "justice", str(path), "--dry-run", "--error-report", str(report))
    assert code == 1, err
    assert f"error report: {report}" in err
    raw = report.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 with BOM
    text = raw.decode("utf-8-sig")
    assert not _FULL_ID.search(text)
    assert text.splitlines()[0] == "行号(row),列(column),原因代码(code),说明(message)"
    found = {int(r["row"]): r for r in publish_cmd.read_report(report)}
    assert set(found) == {i + 2 for i in broken}  # row 1 is the header
    for index, (column, _, reason) in broken.items():
        entry = found[index + 2]
        assert entry["code"] == reason
        assert entry["column"] == column
        assert entry["message"]


def test_jsonl_examples(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
    report = tmp_path / "r.csv"
    code, err = run_cli("--unit", "justice", str(examples), "--dry-run", "--error-report",
                        str(report))
    assert code == 1
    assert "21 rows: 4 valid" in err
    codes = Counter(r["code"] for r in publish_cmd.read_report(report))
    assert codes == {R.TOPIC_UNIT_MISMATCH: 17}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"unit": "justice"}\nnot json\n\n', encoding="utf-8")
    code, err = run_cli("--unit", "justice", str(bad), "--dry-run", "--error-report", str(report))
    assert code == 1
    assert [(r["row"], r["code"]) for r in publish_cmd.read_report(report)] == [
        ("1", R.SCHEMA_MISMATCH), ("2", "BAD_JSON")]


def test_explicit_report_is_written_even_when_clean(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "a.xlsx", sample_rows("fire", 30, seed=2))
    report = tmp_path / "r.csv"
    report.write_text("stale", encoding="utf-8")
    code, _ = run_cli("--unit", "市消防救援支队", str(path), "--dry-run", "--error-report",
                      str(report))
    assert code == 0
    assert publish_cmd.read_report(report) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--unit", "nobody", "FILE"], "unknown unit"),
        (["--unit", "hrss", "FILE"], "no group"),
        (["--unit", "justice", "MISSING"], "no such file"),
        (["--unit", "justice", "OLD"], ".xlsx"),
        (["--unit", "justice", "NOHEADER"], "missing column"),
    ],
)
def test_usage_and_file_errors_exit_2(tmp_path: Path, argv: list[str], message: str) -> None:
    files = {
        "FILE": write_rows(tmp_path / "f.csv", sample_rows("justice", 3, seed=1)),
        "MISSING": tmp_path / "missing.csv",
        "OLD": tmp_path / "old.xls",
        "NOHEADER": tmp_path / "noheader.csv",
    }
    files["OLD"].write_bytes(b"x")
    files["NOHEADER"].write_text("姓名,记录编号\n张三,1\n", encoding="utf-8")
    argv = [str(files.get(a, a)) for a in argv]
    code, err = run_cli(*argv, "--dry-run")
    assert code == 2
    assert message in err


def test_publish_without_a_broker_says_so_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDITBUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CREDITBUS_BOOTSTRAP", raising=False)
    path = write_rows(tmp_path / "f.csv", sample_rows("justice", 3, seed=1))
    code, err = run_cli("--unit", "justice", str(path))
    assert code == 3  # BrokerUnavailable (docs/errors.md)
    assert err.strip() == ("error: no Kafka broker: set CREDITBUS_BOOTSTRAP or run "
                           "`creditbus kafka up`")


# --- the error report's messages: Chinese, the field, the value, what is allowed ---------------

_CJK = re.compile(r"[\u4e00-\u9fff]")
# ASCII words a Chinese message may hold besides the values it quotes: formats and names
_ASCII_OK = {"YYYY", "MM", "DD", "JSON", "Excel", "SHA", "ISO", "null", "true", "false", "U"}


def _english_words(text: str) -> list[str]:
    unquoted = re.sub(r"“[^”]*”|（[a-z_.]+）", "", text)  # quoted values, JSON field paths
    unquoted = re.sub(r"U\+[0-9A-F]{4}", "", unquoted)
    return [w for w in re.findall(r"[A-Za-z_]{2,}", unquoted) if w not in _ASCII_OK]


LAWYER_CATEGORIES = [CATALOG.category(c).name_zh
                     for c in CATALOG.group("lawyer").required_categories]

BAD_CELLS: list[tuple[dict[str, Any], str, str, str, list[str]]] = [
    # change, code, column, shown value, allowed values that must be listed
    ({"信息类别": "不存在的类别"}, R.UNKNOWN_CATEGORY, "信息类别", "“不存在的类别”",
     LAWYER_CATEGORIES),
    ({"信息类别": "日常防火巡查是否到位", "事项": "巡查", "具体内容": "到位", "严重程度": None,
      "发生日期": "2024-01-08"}, R.CATEGORY_NOT_FOR_GROUP, "信息类别", "“日常防火巡查是否到位”",
     LAWYER_CATEGORIES),
    ({"人群类别": "宇航员"}, R.UNKNOWN_GROUP, "人群类别", "“宇航员”", ["律师"]),
    ({"人群类别": "教师"}, R.UNIT_NOT_RESPONSIBLE, "人群类别", "“教师”", ["律师"]),
    ({"严重程度": "很严重"}, R.UNKNOWN_SEVERITY, "严重程度", "“很严重”", ["轻微", "一般", "严重"]),
    ({"严重程度": ""}, R.SEVERITY_REQUIRED, "严重程度", "（空）", ["轻微", "一般", "严重"]),
    ({"重点领域": "外太空"}, R.UNKNOWN_DOMAIN, "重点领域", "“外太空”",
     [d.name_zh for d in CATALOG.domains]),
    ({"操作(新增/撤销)": "作废"}, BAD_ACTION, "操作(新增/撤销)", "“作废”", ["新增", "撤销"]),
    ({"填报单位": "市教育局"}, R.TOPIC_UNIT_MISMATCH, "填报单位", "“市教育局”", ["市司法局"]),
    ({"身份证号码": ID[:17] + "5"}, "ID_CHECKSUM", "身份证号码", "“360702********0315”", []),
    ({"身份证号码": ID[:6] + ID[8:17]}, "ID_LEGACY_15", "身份证号码", "“36***********31”", []),
    ({"身份证号码": " "}, R.EMPTY_FIELD, "身份证号码", "（空）", []),
    ({"姓名": "刘\u200b建华"}, R.BAD_NAME, "姓名", "“刘***”", []),
    ({"处罚决定日期": "2024-13-45"}, BAD_DATE, "处罚决定日期", "“2024-13-45”", ["2024-02-26"]),
    ({"罚款金额（元）": "五千"}, BAD_NUMBER, "罚款金额（元）", "“五千”", []),
    ({"公示截止期": "2020-01-01"}, R.DATE_ORDER, "公示截止期", "“2020-01-01”", []),
    ({"处罚决定日期": "2999-01-01"}, R.FUTURE_DATE, "发生日期", "“2999-01-01”", []),
    ({"统一社会信用代码": "91360702MA3AKL0I68"}, "USCC_CHARSET", "统一社会信用代码",
     "“91360702MA3AKL0I68”", []),
    ({"违法事实": "超" * 4001}, R.FIELD_TOO_LONG, "违法事实", "“" + "超" * 29 + "…”", []),
    ({"决定书文号": None}, R.EMPTY_FIELD, "决定书文号", "（空）", []),
    ({"是否属实": "也许", "信息类别": "收到投诉申诉情况", "受理日期": "2024-01-08",
      "投诉事由": "x"}, BAD_BOOLEAN, "是否属实", "“也许”", ["是", "否"]),
]


def test_every_report_message_is_chinese_names_its_field_and_shows_the_value(
    tmp_path: Path,
) -> None:
    rows = [dict(PENALTY_ROW, **{"记录编号": f"R{i}", **change})
            for i, (change, *_) in enumerate(BAD_CELLS)]
    headers = list(dict.fromkeys(h for row in rows for h in row))
    path = write_rows(tmp_path / "bad.csv", rows, headers=headers)
    report = tmp_path / "report.csv"
    code, err = run_cli("--unit", "市司法局", str(path), "--dry-run", "--error-report", str(report))
    assert code == 1, err
    found = {int(r["row"]) - 2: r for r in publish_cmd.read_report(report)}
    assert set(found) == set(range(len(BAD_CELLS)))
    for i, (change, reason, column, value, allowed) in enumerate(BAD_CELLS):
        entry = found[i]
        text = entry["message"]
        assert (entry["code"], entry["column"]) == (reason, column), (change, entry)
        assert text.startswith(f"{column}{value}："), (change, text)
        assert _CJK.search(text.split("：", 1)[1]), text
        assert not _english_words(text), (text, _english_words(text))
        assert not _FULL_ID.search(text)
        for name in allowed:
            assert name in text.split("可填：", 1)[1], (name, text)


def test_unknown_category_lists_the_groups_categories_only() -> None:
    exc = row_error(dict(PENALTY_ROW, 信息类别="不存在的类别"))
    assert exc.code == R.UNKNOWN_CATEGORY
    listed = exc.message.split("可填：", 1)[1].split("、")
    assert sorted(listed) == sorted(LAWYER_CATEGORIES)
    assert "教育培训记录" not in listed  # a teacher's item, not a lawyer's
    assert exc.message.startswith("信息类别“不存在的类别”：")


def test_an_id_stored_as_a_number_is_shown_masked(tmp_path: Path) -> None:
    exc = row_error(dict(PENALTY_ROW, 身份证号码=float(ID)))
    assert exc.code == ID_STORED_AS_NUMBER
    assert exc.message.startswith("身份证号码“360702********") and "文本格式" in exc.message
    assert ID not in exc.message


def test_jsonl_report_messages_name_the_json_field(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
    first = json.loads(examples.read_text("utf-8").splitlines()[0])
    bad_date = json.loads(json.dumps(first))
    bad_date["content"]["Penalty"]["decision_date"] = "26/02/2024"
    wrong_id = dict(first, person=dict(first["person"], id_number=ID[:17] + "5"))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(["[1]", json.dumps(bad_date, ensure_ascii=False),
                               json.dumps(wrong_id, ensure_ascii=False)]), encoding="utf-8")
    report = tmp_path / "r.csv"
    code, _ = run_cli("--unit", "justice", str(path), "--dry-run", "--error-report", str(report))
    assert code == 1
    rows = publish_cmd.read_report(report)
    assert [(r["code"], r["message"]) for r in rows] == [
        ("BAD_JSON", "整条记录：不符合 JSON 格式的数据规范（该行不是 JSON 对象）"),
        ("BAD_JSON", "处罚决定日期（content.decision_date）“26/02/2024”：不符合 JSON 格式的数据规范"
                     "（应为日期 YYYY-MM-DD）"),
        ("ID_CHECKSUM", "身份证号码（person.id_number）“360702********0315”：校验位（第 18 位）"
                        "不正确，请核对号码"),
    ]


def test_a_failed_delivery_is_explained_in_chinese() -> None:
    text = publish_cmd.delivery_message(str(KafkaError(KafkaError._MSG_TIMED_OUT)))
    assert text.startswith("整条记录：数据有效，但消息服务器未确认接收")
    assert "_MSG_TIMED_OUT" in text and "重新导入" in text
    assert not _english_words(text.replace("_MSG_TIMED_OUT", ""))


def test_long_values_are_masked_before_they_are_cut() -> None:
    text = shown("illegal_facts", f"当事人身份证号码为{ID}的人员代理案件时私自收费")
    assert "360702********0314" in text and text.endswith("…”")
    assert not re.search(r"\d{7,}", text)
