"""The catalog as data: packaged TOML, extra directories, validation, lookups, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from creditbus.catalog import (
    CODE_PATTERN,
    CatalogError,
    UnknownCodeError,
    default_catalog,
    load_catalog,
)
from creditbus.cli import main as cli_main

PROGRESS_TABLE = [
    "市委组织部", "市人社局", "市市场监管局", "市应急管理局", "市生态环境局", "市住建局",
    "市公安局", "市司法局", "市教育局", "市卫健委", "市财政局", "市税务局", "市消防救援支队",
    "市审计局", "市金融办", "市文广新旅局", "市民政局", "市科技局", "市行政审批局", "市委网信办",
    "市交通运输局", "市邮政管理局", "市自然资源局", "市商务局",
]

CORE = {"basic_info", "career", "reward", "punishment", "violation", "other"}
ASSESSED = CORE | {"annual_assessment", "complaint"}
# The notice's 二、具体责任分工: group -> (items it names, responsible city units).
NOTICE = {
    "civil_servant": (ASSESSED | {"integrity", "disciplinary_sanction"}, {"市委组织部"}),
    "legal_rep": (
        CORE | {"annual_assessment", "professional_credit", "dishonest_debtor",
                "severe_dishonesty_penalty", "bankruptcy_fault"},
        {"市市场监管局", "市应急管理局", "市生态环境局", "市住建局", "市公安局"},
    ),
    "lawyer": (
        ASSESSED | {"business_info", "social_service", "professional_credit", "practice_penalty",
                    "integrity", "public_welfare"},
        {"市司法局"},
    ),
    "teacher": (ASSESSED | {"qualification", "conduct_compliance", "training"}, {"市教育局"}),
    "physician": (
        ASSESSED | {"professional_credit", "training", "unlicensed_practice",
                    "patient_privacy_leak", "illegal_charging", "red_envelope"},
        {"市卫健委"},
    ),
    "tax_agent": (
        ASSESSED | {"business_info", "professional_credit", "practice_penalty",
                    "certificate_renting"},
        {"市税务局"},
    ),
    "fire_engineer": (
        ASSESSED | {"professional_credit", "training", "certificate_renting", "fire_patrol",
                    "hazard_rectification"},
        {"市消防救援支队"},
    ),
    "auditor": (
        ASSESSED | {"business_info", "professional_credit", "practice_penalty",
                    "certificate_renting"},
        {"市财政局", "市审计局"},
    ),
    "real_estate_agent": (
        ASSESSED | {"business_info", "professional_credit", "practice_penalty"}, {"市住建局"}
    ),
    "financial_practitioner": (
        ASSESSED | {"business_info", "professional_credit", "practice_penalty"}, {"市金融办"}
    ),
    "tour_guide": (
        {"basic_info", "career", "reward", "punishment", "law_contract_violation", "training",
         "tourist_rights_infringement", "forced_shopping", "route_change", "other"},
        {"市文广新旅局"},
    ),
}

DOMAINS = (
    "食品药品 安全生产 消防安全 交通安全 环境保护 生物安全 产品质量 税收缴纳 "
    "医疗卫生 劳动保障 工程建设 金融服务 知识产权 司法诉讼 电子商务 志愿服务"
).split()


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


# --- the packaged data ---


def test_progress_table_has_24_units_in_order(catalog) -> None:
    units = catalog.progress_units()
    assert [u.seq for u in units] == list(range(1, 25))
    assert [u.name_zh for u in units] == PROGRESS_TABLE
    assert all(u.kind == "city_unit" for u in units)
    assert catalog.unit("justice").name_zh == "市司法局"
    assert catalog.unit("culture_tourism").name_zh == "市文广新旅局"


def test_every_code_is_a_valid_topic_suffix(catalog) -> None:
    for entries in (catalog.units, catalog.groups, catalog.categories, catalog.domains):
        for entry in entries:
            assert re.fullmatch(CODE_PATTERN, entry.code), entry.code


def test_counties_and_associations_are_outside_the_progress_table(catalog) -> None:
    counties = catalog.units_of_kind("county")
    associations = catalog.units_of_kind("association")
    assert {u.name_zh for u in counties} >= {"章贡区", "南康区", "赣县区"}
    assert catalog.unit("zhanggong").division == "360702"
    assert all(u.seq is None for u in (*counties, *associations))
    assert catalog.unit_by_name("赣州市律师协会").groups == ("lawyer",)
    assert catalog.may_publish("assoc_tourism", "tour_guide")
    assert not catalog.may_publish("assoc_tourism", "lawyer")


@pytest.mark.parametrize("group_code", sorted(NOTICE))
def test_notice_groups_have_their_categories_and_units(catalog, group_code: str) -> None:
    items, unit_names = NOTICE[group_code]
    group = catalog.group(group_code)
    assert group.tier == "key"
    assert set(group.required_categories) == items
    city = {u.name_zh for u in catalog.responsible_units(group_code) if u.kind == "city_unit"}
    assert city == unit_names


def test_tour_guides_have_no_assessment_or_complaints(catalog) -> None:
    required = catalog.group("tour_guide").required_categories
    assert "annual_assessment" not in required and "complaint" not in required


def test_98_groups_without_unit_and_encouraged_groups(catalog) -> None:
    for code in ("pharmacist", "appraiser", "certifier"):
        assert catalog.group(code).tier == "key"
        assert catalog.responsible_units(code) == ()
    encouraged = [g for g in catalog.groups if g.tier == "encouraged"]
    assert len(encouraged) == 12
    assert catalog.group_by_name("机动车驾驶人").code == "motor_vehicle_driver"
    assert len([g for g in catalog.groups if g.tier == "key"]) == 14


def test_domains_and_severities(catalog) -> None:
    assert [d.name_zh for d in catalog.domains] == DOMAINS
    assert catalog.domain("medical_health").name_zh == "医疗卫生"
    serious = catalog.severity("SERIOUS")
    assert serious is catalog.severity("serious") is catalog.severity("严重")
    assert (serious.disclosure_min_months, serious.disclosure_max_months) == (12, 36)
    general = catalog.severity("general")
    assert (general.symbol, general.disclosure_min_months, general.disclosure_max_months) == (
        "GENERAL", 3, 12)
    assert not catalog.severity("MINOR").disclosed
    with pytest.raises(UnknownCodeError):
        catalog.severity("grave")


def test_categories_content_and_dishonesty(catalog) -> None:
    assert catalog.category("practice_penalty").content_kind == "penalty"
    assert catalog.category("practice_penalty").dishonesty
    assert catalog.category("red_envelope").dishonesty
    assert catalog.category("disciplinary_sanction").dishonesty
    assert catalog.category("annual_assessment").content_kind == "assessment"
    assert not catalog.category("annual_assessment").dishonesty
    assert catalog.category("training").content_kind == "training"
    assert not catalog.category("reward").dishonesty
    used = {c for g in catalog.groups for c in g.required_categories}
    assert used == {c.code for c in catalog.categories}


def test_may_publish(catalog) -> None:
    assert catalog.may_publish("justice", "lawyer")
    assert not catalog.may_publish("justice", "teacher")
    assert catalog.may_publish("housing", "real_estate_agent")
    assert catalog.may_publish("housing", "legal_rep")
    assert not catalog.may_publish("hrss", "civil_servant")
    assert not catalog.may_publish("nobody", "lawyer")
    assert not catalog.may_publish("justice", "nobody")
    assert catalog.allows_category("lawyer", "practice_penalty")
    assert not catalog.allows_category("teacher", "practice_penalty")


def test_unknown_codes_raise_key_error(catalog) -> None:
    with pytest.raises(KeyError) as info:
        catalog.unit("nobody")
    assert isinstance(info.value, UnknownCodeError)
    assert str(info.value) == "unknown unit code 'nobody'"
    with pytest.raises(UnknownCodeError):
        catalog.responsible_units("nobody")


def test_default_next_step_and_to_dict(catalog) -> None:
    assert catalog.unit("justice").next_step
    assert catalog.unit("hrss").next_step != catalog.unit("justice").next_step
    data = json.loads(json.dumps(catalog.to_dict(), ensure_ascii=False))
    assert set(data) == {"units", "groups", "categories", "domains", "severities"}
    assert data["units"][0]["code"] == "org" and data["units"][0]["seq"] == 1


def test_default_catalog_is_cached(monkeypatch) -> None:
    monkeypatch.delenv("CREDITBUS_CATALOG_DIR", raising=False)
    default_catalog.cache_clear()
    try:
        assert default_catalog() is default_catalog()
    finally:
        default_catalog.cache_clear()


def test_entries_are_frozen(catalog) -> None:
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        catalog.unit("justice").groups = ()


# --- extra directories ---

EXTRA = """
[[units]]
code = "xinfeng"
name_zh = "信丰县"
kind = "county"
division = "360722"
groups = ["lawyer", "drone_pilot"]

[[units]]
code = "justice"
documents = ["赣州市律师信用档案管理办法"]
remark = "已建立"

[[groups]]
code = "drone_pilot"
name_zh = "无人机驾驶员"
tier = "encouraged"
required_categories = ["basic_info", "career", "violation", "flight_record"]
default_domain = "traffic_safety"

[[categories]]
code = "flight_record"
name_zh = "飞行记录"
content_kind = "note"
dishonesty = false
"""


def test_extra_dir_adds_a_county_a_group_and_overrides_a_unit(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_text(EXTRA, encoding="utf-8")
    catalog = load_catalog(tmp_path)
    assert catalog.unit("xinfeng").kind == "county"
    assert catalog.may_publish("xinfeng", "drone_pilot")
    assert catalog.group("drone_pilot").required_categories[-1] == "flight_record"
    assert [u.code for u in catalog.responsible_units("drone_pilot")] == ["xinfeng"]
    justice = catalog.unit("justice")
    assert justice.documents == ("赣州市律师信用档案管理办法",)
    assert justice.remark == "已建立"
    assert (justice.seq, justice.groups, justice.name_zh) == (8, ("lawyer",), "市司法局")
    assert len(catalog.progress_units()) == 24


def test_extra_dir_can_extend_the_progress_table(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        '[[units]]\nseq = 25\ncode = "stats"\nname_zh = "市统计局"\nkind = "city_unit"\n',
        encoding="utf-8",
    )
    assert load_catalog(tmp_path).progress_units()[-1].name_zh == "市统计局"


def broken(tmp_path: Path, text: str) -> CatalogError:
    (tmp_path / "broken.toml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    assert "broken.toml" in str(info.value)
    return info.value


def test_duplicate_code_in_one_layer(tmp_path: Path) -> None:
    unit = '[[units]]\ncode = "ruijin"\nname_zh = "瑞金市"\nkind = "county"\n'
    exc = broken(tmp_path, unit + "\n" + unit.replace("瑞金市", "瑞金"))
    assert "duplicate unit code 'ruijin'" in str(exc)


def test_unknown_group_reference_names_the_entry(tmp_path: Path) -> None:
    exc = broken(
        tmp_path,
        '[[units]]\ncode = "ruijin"\nname_zh = "瑞金市"\nkind = "county"\ngroups = ["lawyers"]\n',
    )
    assert "unit 'ruijin': group 'lawyers' is not defined" in str(exc)


def test_unknown_category_and_domain_references(tmp_path: Path) -> None:
    exc = broken(
        tmp_path,
        '[[groups]]\ncode = "x_group"\nname_zh = "某人群"\ntier = "key"\n'
        'required_categories = ["basic_info", "nope"]\ndefault_domain = "space"\n',
    )
    assert "group 'x_group': category 'nope' is not defined" in str(exc)
    assert "group 'x_group': domain 'space' is not defined" in str(exc)
    assert len(exc.problems) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[units]]\ncode = "Bad-Code"\nname_zh = "坏"\nkind = "county"\n',
         "unit 'Bad-Code': code"),
        ('[[units]]\ncode = "x1"\nname_zh = "某单位"\nkind = "city"\n', "unit 'x1': kind"),
        ('[[units]]\ncode = "x1"\nname_zh = "某区"\nkind = "county"\nseq = 25\n',
         "only city units have a progress-table seq"),
        ('[[units]]\nseq = 30\ncode = "x1"\nname_zh = "某局"\nkind = "city_unit"\n',
         "unit 'x1': seq 30 leaves a gap"),
        ('[[units]]\nseq = 3\ncode = "x1"\nname_zh = "某局"\nkind = "city_unit"\n',
         "seq 3 is also used"),
        ('[[units]]\ncode = "x1"\nname_zh = "某局"\nkind = "county"\ncolour = "red"\n',
         "unit 'x1': colour"),
        ('[[units]]\ncode = "x1"\nname_zh = "市司法局"\nkind = "county"\n', "also used by"),
        ('[[unit]]\ncode = "x1"\n', "unknown array 'unit'"),
        ('[[units]]\nname_zh = "无代码"\n', "unit #1 has no code"),
        ("[[units]\n", "not valid TOML"),
        ('[[severities]]\ncode = "x1"\nname_zh = "某"\nsymbol = "SERIOUS"\n'
         "disclosure_min_months = 1\ndisclosure_max_months = 2\n", "symbol 'SERIOUS'"),
        ('[[severities]]\ncode = "x1"\nname_zh = "某"\nsymbol = "X1"\n'
         "disclosure_min_months = 5\ndisclosure_max_months = 2\n", "exceeds"),
    ],
)
def test_broken_data_is_reported(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in str(broken(tmp_path, text))


def test_missing_extra_dir(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope")


# --- the command ---


def run_cli(argv: list[str]) -> int:
    """The command line as the console runs it: its one error path included."""
    return cli_main.main(argv)


def test_cli_listing(capsys, monkeypatch) -> None:
    monkeypatch.delenv("CREDITBUS_CATALOG_DIR", raising=False)
    default_catalog.cache_clear()
    assert run_cli(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "市司法局" in out and "justice" in out and "lawyer 律师" in out
    assert "执业处罚情况" in out and "SERIOUS" in out


def test_cli_json_with_extra_dir(capsys, tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_text(EXTRA, encoding="utf-8")
    assert run_cli(["catalog", "--json", "--only", "units", "--catalog-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["units"]
    assert "xinfeng" in {u["code"] for u in data["units"]}


def test_cli_reports_broken_catalog(capsys, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[[units]]\ncode = "x1"\n', encoding="utf-8")
    assert run_cli(["catalog", "--catalog-dir", str(tmp_path)]) == 2
    assert "bad.toml" in capsys.readouterr().err
