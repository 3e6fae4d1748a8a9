"""The portal's pieces without a broker or browser: accounts and throttling, the progress rows'
history, formula-safe exports, the unit-scoped queries (tests/integration/test_portal_browser.py
drives the whole portal in a browser)."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from creditbus.services.portal.accounts import (
    AccountError,
    LoginThrottle,
    check_password,
    hash_password,
)
from creditbus.services.portal.exports import error_report_csv, safe_cell, with_unit_texts
from creditbus.services.portal.store import Account, Outcome, PortalStore, _masked_pattern
from creditbus.services.portal.unit import header_problem
from creditbus.services.reports.progress import NOT_PUSHED, PlatformFacts, build_report

from creditbus.catalog import default_catalog


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[PortalStore]:
    made = PortalStore(f"sqlite:///{tmp_path / 'p.db'}")
    made.migrate()
    yield made
    made.close()


def test_passwords_are_argon2id_and_checked(store: PortalStore) -> None:
    with pytest.raises(AccountError):
        hash_password("short")
    hashed = hash_password("a long enough password")
    assert hashed.startswith("$argon2id$") and "a long enough password" not in hashed
    store.save_account(Account("sfj", "unit", "justice", "赣州市司法局", hashed))
    assert check_password(store, "sfj", "a long enough password").unit == "justice"
    assert check_password(store, "sfj", "a wrong password") is None
    assert check_password(store, "nobody", "a long enough password") is None


def test_a_unit_account_needs_its_unit(store: PortalStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.save_account(Account("x", "unit", None, "x", hash_password("0123456789")))


def test_the_throttle_blocks_a_name_and_an_address_after_five_failures() -> None:
    throttle = LoginThrottle(limit=5, window_s=60)
    for _ in range(5):
        assert not throttle.blocked("sfj", "10.0.0.1")
        throttle.failed("sfj", "10.0.0.1")
    assert throttle.blocked("sfj", "10.0.0.2")  # the name, from anywhere
    assert throttle.blocked("other", "10.0.0.1")  # the address, for any name
    assert not throttle.blocked("other", "10.0.0.2")
    throttle.succeeded("sfj")
    assert not throttle.blocked("sfj", "10.0.0.2")


def test_progress_rows_keep_every_version(store: PortalStore) -> None:
    assert store.save_progress("justice", "文件一", "计划一", "", "sfj") == 1
    assert store.save_progress("justice", "文件二", "计划二", "备注", "sfj2") == 2
    entry = store.progress_entries()["justice"]
    assert (entry.documents, entry.version, entry.updated_by) == ("文件二", 2, "sfj2")
    history = store.progress_history("justice")
    assert [(h["version"], h["documents"]) for h in history] == [(2, "文件二"), (1, "文件一")]
    assert store.progress_history("edu") == []


def test_submissions_are_seen_only_by_their_unit(store: PortalStore) -> None:
    store.create_submission("s1", "justice", "sfj", "a.csv")
    assert store.submission("s1", "justice")["filename"] == "a.csv"
    assert store.submission("s1", "edu") is None
    assert store.submission("s1", None) is not None  # the office
    assert store.submissions("edu") == []


def test_formulas_stay_text_in_exports() -> None:
    assert safe_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    for text in ("+1", "-1", "@SUM(A1)", "\t=1"):
        assert safe_cell(text).startswith("'")
    assert safe_cell("赣市司法〔2022〕1号") == "赣市司法〔2022〕1号" and safe_cell(3) == 3
    data = error_report_csv([Outcome(5, "rejected", "R-1", None, "BAD", "=cmd|' /C calc'!A0")])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[1][0] == "5" and rows[1][1] == "被拒绝" and rows[1][4].startswith("'=")


def test_the_units_texts_replace_the_catalogs_and_established_stays_computed() -> None:
    catalog = default_catalog()
    report = build_report(catalog, PlatformFacts(), datetime(2026, 12, 1))
    from creditbus.services.portal.store import ProgressEntry

    entries = {"justice": ProgressEntry("justice", "文件", "计划", "说明", 1, 0, "sfj")}
    row = next(r for r in with_unit_texts(report, entries).rows if r.unit_code == "justice")
    assert (row.documents, row.next_step) == ("文件", "计划")
    assert not row.established and row.remark == f"说明；{NOT_PUSHED}"


def test_masked_id_search_patterns_and_header_messages() -> None:
    assert _masked_pattern("362101 1234") == "362101%1234"
    assert _masked_pattern("张三") == "张三"
    assert header_problem("missing column(s): 姓名, 身份证号码") == "缺少必填列 姓名, 身份证号码"
