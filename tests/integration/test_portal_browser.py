"""The web portal in a real browser (Debian's Chromium through Playwright) against the real
broker, a real stream worker and sink, and a real SQLite platform database.

One scenario, as people use it: a unit logs in, downloads its template, uploads a file with good
and bad rows and sees each row's outcome, fills its row of the progress table; the office sees
that row and the unit's counts in the live progress table, exports it (a formula typed by the
unit stays text), looks a person up with a purpose and finds the audit record. Bad input on the
way: wrong file type, broken .xlsx, empty file, a 50 MB file, a forged CSRF token, another unit's
record id: each gets a clear page and changes nothing. Screenshots of the main pages go to
build/screenshots/portal/ (not committed).
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from creditbus.services.portal.accounts import hash_password
from creditbus.services.portal.store import Account, PortalStore
from openpyxl import load_workbook

from creditbus.devtools.kafka.ports import free_port
from creditbus.devtools.sample import write_sample_file
from creditbus.kafka.admin import ensure_bus_topics
from creditbus.settings import Settings
from tests.bus import BusProcess, wait_for, worker_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots" / "portal"
CHROMIUM = "/usr/bin/chromium"
CJK_FONT = "fonts-wqy-microhei"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
UNIT, UNIT_USER, OFFICE_USER = "justice", "sfj", "xyb"
PASSWORD = "portal-test-password"
FORMULA = '=HYPERLINK("http://example.invalid","点我")'
PURPOSE = "律师执业年度考核核查（门户测试）"


def chromium() -> str:
    """Debian's chromium, and a Chinese font for legible screenshots, installed with apt-get
    (as root) when missing, like PostgreSQL."""
    packages = [p for p, present in (("chromium", os.access(CHROMIUM, os.X_OK)),
                                     (CJK_FONT, _has_cjk_font())) if not present]
    if not packages:
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        if "chromium" in packages:
            pytest.fail("the browser test needs Debian's chromium (apt-get install chromium)")
        return CHROMIUM  # screenshots without Chinese glyphs; the test itself is unaffected
    print(f"tests: installing the Debian package(s) {' '.join(packages)} with apt-get "
          "(once)...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(f"apt-get update -qq && apt-get install -y -qq {' '.join(packages)}",
                            shell=True, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"apt-get install {' '.join(packages)} failed:\n"
                    + (result.stderr or result.stdout)[-2000:])
    return CHROMIUM


def _has_cjk_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def _upload_file(tmp: Path) -> tuple[Path, str, str, str]:
    """A CSV of the unit with good rows, a bad identity number and a repeated row; the file,
    a good row's identity number and record id, and the bad row's record id."""
    sample = write_sample_file(tmp / "sample.csv", UNIT, 6, 7)
    with sample.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    id_col, rid_col = header.index("身份证号码"), header.index("记录编号")
    bad = list(body[0])
    bad[id_col] = bad[id_col][:-1] + ("0" if bad[id_col][-1] != "0" else "1")
    bad[rid_col] = "JUSTIC-BAD-000001"
    body += [bad, list(body[1])]  # a row with a wrong check digit, a repeated row
    out = tmp / "司法局_律师.csv"
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([header, *body])
    return out, body[0][id_col], body[0][rid_col], bad[rid_col]


@pytest.fixture()
def portal(bus_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    db = tmp_path / "platform.db"
    env = dict(bus_env, CREDITBUS_DATABASE_URL=f"sqlite:///{db}",
               CREDITBUS_PORTAL_RECEIPT_TIMEOUT_S="30", CREDITBUS_LOG_LEVEL="WARNING")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = Settings.from_env()
    ensure_bus_topics(settings)
    port = free_port()
    logs = tmp_path / "logs"
    procs = [
        BusProcess(["worker"], worker_env(env, tmp_path / "state"), logs / "worker.log"),
        BusProcess(["sink", "--batch-ms", "50"], env, logs / "sink.log"),
        BusProcess(["portal", "--port", str(port)], env, logs / "portal.log"),
    ]
    for proc in procs[:2]:
        proc.start()  # the worker and the sink start while the accounts are made
    store = PortalStore(env["CREDITBUS_DATABASE_URL"])
    store.migrate()
    store.save_account(Account(UNIT_USER, "unit", UNIT, "赣州市司法局", hash_password(PASSWORD)))
    store.save_account(Account(OFFICE_USER, "office", None, "信用办", hash_password(PASSWORD)))
    store.close()
    procs[2].start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert all(p.alive() for p in procs), "\n".join(p.output()[-3000:] for p in procs)
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    try:
        wait_for(up, 60, "the portal answers")
        yield base, env
    finally:
        for proc in reversed(procs):
            proc.stop(30)


def test_units_and_the_office_use_the_portal(portal: tuple[str, dict[str, str]],
                                             tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, env = portal
    SHOTS.mkdir(parents=True, exist_ok=True)
    upload, good_id, good_record, bad_record = _upload_file(tmp_path)
    db = Path(env["CREDITBUS_DATABASE_URL"].removeprefix("sqlite:///"))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        context = browser.new_context(accept_downloads=True, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(30_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        def login(user: str, password: str = PASSWORD) -> None:
            page.goto(f"{base}/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.click("#login-form button")

        # -- a unit -------------------------------------------------------------------------
        login(UNIT_USER, "wrong password!")
        expect(page.locator("#login-message")).to_contain_text("用户名或密码错误")
        shot("01-login")
        login(UNIT_USER)
        expect(page.locator("h1")).to_contain_text("上传信用档案数据")
        shot("02-unit-home")

        links = page.locator("a.template-link")
        with page.expect_download() as info:
            links.first.click()
        assert info.value.suggested_filename.endswith("模板.xlsx")
        template = tmp_path / "template.xlsx"
        info.value.save_as(template)
        book = load_workbook(template, read_only=True)
        headers = [c.value for c in next(book.worksheets[0].iter_rows(max_row=1))]
        book.close()
        assert "身份证号码" in headers and "记录编号" in headers

        page.set_input_files("#upload-file", str(upload))
        page.click("#upload-form button")
        page.wait_for_url("**/unit/submissions/*")
        expect(page.locator("#sub-status")).to_have_text("已完成", timeout=120_000)
        rejected = page.locator("#outcomes tr.o-rejected")
        expect(rejected).to_have_count(1)
        expect(rejected.first).to_contain_text("JUSTIC-BAD-000001")
        expect(rejected.first).to_contain_text("ID_")  # the reason code
        assert good_id not in page.content()
        expect(page.locator("#outcomes tr.o-duplicate")).to_have_count(1)
        # the bus decides every row (a slow worker: the page keeps waiting for the receipts)
        expect(page.locator("#count-pending")).to_have_text("0", timeout=120_000)
        expect(page.locator("#sub-status")).to_have_text("已完成")
        assert int(page.locator("#count-accepted").inner_text()) >= 1
        shot("03-unit-outcomes")
        with page.expect_download() as info:
            page.click("#error-report")
        report = Path(info.value.path()).read_text(encoding="utf-8-sig")
        assert bad_record in report and "被拒绝" in report
        submission_url = page.url
        wait_for(lambda: _records_of(db, UNIT) > 0, 60, "the sink wrote the unit's records")

        # the progress row: 出台文件名称 with a formula that an export must keep as text
        page.goto(f"{base}/unit/progress")
        page.fill("textarea[name=documents]", FORMULA)
        page.fill("textarea[name=next_step]", "2023年底前完成律师信用档案全覆盖")
        page.fill("textarea[name=remark]", "门户填报")
        page.click("#progress-form button")
        expect(page.locator("#progress-message")).to_contain_text("第 1 版")
        expect(page.locator("#progress-history tbody tr")).to_have_count(1)
        shot("04-unit-progress")

        # bad input: each a clear page, nothing changed
        submissions_before = _count(db, "cb_portal_submission")
        for name, data, expected in (
            ("notes.txt", b"hello", "文件类型不支持"),
            ("broken.xlsx", b"PK\x03\x04 this is not a workbook", "不是有效的 .xlsx"),
            ("empty.csv", b"", "空的"),
        ):
            path = tmp_path / name
            path.write_bytes(data)
            page.goto(f"{base}/unit")
            page.set_input_files("#upload-file", str(path))
            page.click("#upload-form button")
            expect(page.locator("#error-message")).to_contain_text(expected)
        big = tmp_path / "big.csv"
        with big.open("wb") as handle:
            handle.truncate(50 * 1024 * 1024)
        page.goto(f"{base}/unit")
        page.set_input_files("#upload-file", str(big))
        page.click("#upload-form button")
        expect(page.locator("#error-message")).to_contain_text("MB 的上限", timeout=60_000)
        shot("05-error-too-big")
        assert _count(db, "cb_portal_submission") == submissions_before

        page.goto(f"{base}/unit/progress")
        page.evaluate("document.querySelector('#progress-form input[name=csrf_token]')"
                      ".value = 'forged'")
        page.fill("textarea[name=next_step]", "被伪造的请求")
        page.click("#progress-form button")
        expect(page.locator("#error-message")).to_contain_text("CSRF")
        assert _count(db, "cb_portal_progress_history") == 1

        # another unit's record (once the sink has the other unit's rows)
        page.goto(f"{base}/unit/records")
        page.fill("input[name=purpose]", PURPOSE)
        page.click("#records-form button")
        expect(page.locator("#record-results")).to_be_visible()
        other = _other_units_record(db)
        page.goto(f"{base}/unit/records/{other}")
        expect(page.locator("#error-message")).to_contain_text("未找到该记录")

        # retraction of one of its records, from the record's page (the purpose is stated)
        page.goto(f"{base}/unit/records/{good_record}")
        expect(page.locator("h1")).to_contain_text(good_record)
        page.fill("#retract-form input[name=id_number]", good_id[:-1] + "X")
        page.fill("#retract-form input[name=reason]", "录入错误")
        page.click("#retract-form button")
        expect(page.locator("#error-message")).to_contain_text("不一致")
        page.goto(f"{base}/unit/records/{good_record}")
        page.fill("#retract-form input[name=id_number]", good_id)
        page.fill("#retract-form input[name=reason]", "录入错误")
        page.click("#retract-form button")
        expect(page.locator("#record-message")).to_contain_text("撤回申请已受理")
        assert good_id not in page.content()
        wait_for(lambda: _retracted(db, UNIT, good_record), 60, "the retraction reached the DB")
        page.goto(submission_url)
        page.click("form.logout button")

        # -- the office ---------------------------------------------------------------------
        login(OFFICE_USER)
        row = page.locator("#annex tr[data-unit=justice]")
        expect(row).to_contain_text("是")
        expect(row).to_contain_text(FORMULA)
        expect(row).to_contain_text("2023年底前完成律师信用档案全覆盖")
        assert int(row.locator("td").nth(7).inner_text()) == _records_of(db, UNIT)
        shot("06-office-progress")
        with page.expect_download() as info:
            page.click("#export-xlsx")
        exported = tmp_path / "export.xlsx"
        info.value.save_as(exported)
        sheet = load_workbook(exported).worksheets[0]
        cells = [c for r in sheet.iter_rows() for c in r if c.value and "HYPERLINK" in str(c.value)]
        assert cells and all(c.data_type == "s" and not str(c.value).startswith("=")
                             for c in cells)

        page.goto(f"{base}/office/lookup")
        page.fill("input[name=id_number]", good_id)
        page.fill("input[name=purpose]", PURPOSE)
        page.click("#lookup-form button")
        expect(page.locator("#archive-records tbody tr").first).to_be_visible()
        assert good_id not in page.content() and good_id not in page.url
        key = page.locator("#person-key").inner_text()
        shot("07-office-lookup")

        page.goto(f"{base}/office/rejections")
        expect(page.locator("#upload-rejections")).to_contain_text("司法局")
        shot("08-office-rejections")

        page.goto(f"{base}/office/audit?action=lookup&person={key[:16]}")
        audit = page.locator("#audit-records tbody tr").first
        expect(audit).to_contain_text(PURPOSE)
        expect(audit).to_contain_text(OFFICE_USER)
        expect(audit).to_contain_text("allowed")
        shot("09-office-audit")
        browser.close()


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _records_of(db: Path, unit: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM cb_record WHERE unit = ? AND "
                                "NOT is_retracted", (unit,)).fetchone()[0])


def _retracted(db: Path, unit: str, record_id: str) -> bool:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT is_retracted FROM cb_record WHERE unit = ? AND record_id = ?",
                           (unit, record_id)).fetchone()
    return bool(row and row[0])


def _other_units_record(db: Path) -> str:
    """A record id of another unit, written straight into the platform table (as if that
    unit had published it)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT * FROM cb_record LIMIT 1").fetchone()
        columns = [d[0] for d in conn.execute("SELECT * FROM cb_record LIMIT 1").description]
        if row is None:
            return "EDU-000001"
        values = dict(zip(columns, row, strict=True))
        values.update(unit="edu", record_id="EDU-PORTAL-000001")
        marks = ", ".join("?" * len(values))
        conn.execute(f"INSERT INTO cb_record ({', '.join(values)}) VALUES ({marks})",
                     tuple(values.values()))
    return "EDU-PORTAL-000001"

