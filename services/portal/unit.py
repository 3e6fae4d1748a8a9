"""The unit's pages (单位账号): templates, uploads and their outcomes, submissions, records,
retraction requests and the unit's own row of the progress table."""

from __future__ import annotations

import time as _time
import uuid
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from aiohttp import web
from creditbus.services.portal import uploads
from creditbus.services.portal.exports import error_report_csv
from creditbus.services.portal.web import (
    JOBS_KEY,
    PORTAL_KEY,
    READS_KEY,
    SETTINGS_KEY,
    UPLOAD_DIR_KEY,
    PortalError,
    User,
    check_csrf,
    check_purpose,
    client_address,
    render,
    require_user,
)

from creditbus.constants import CHINA_TZ
from creditbus.contract.models import REPAIR_RECORD
from creditbus.contract.validation import EventRejected
from creditbus.identity import IdentifierError, parse_resident_id, person_key
from creditbus.publish.producer import CreditPublisher, default_wire
from creditbus.publish.row_events import HeaderError, map_headers
from creditbus.publish.spreadsheet import TableError, open_table
from creditbus.publish.template import build_template, default_file_name
from creditbus.receipts import ReceiptsError, wait_for_receipts

ALLOWED_SUFFIXES = (".xlsx", ".csv")
XLSX_MAGIC = b"PK\x03\x04"
TEXT_LIMIT = 2000
ACTION_RECEIPT_S = 15.0


async def _unit_user(request: web.Request) -> User:
    return await require_user(request, "unit")


def _unit(user: User) -> str:
    return str(user.account.unit)


async def dashboard(request: web.Request) -> web.StreamResponse:
    user = await _unit_user(request)
    portal = request.app[PORTAL_KEY]
    submissions = await portal.run(portal.store.submissions, _unit(user), 10)
    unit = portal.catalog.unit(_unit(user))
    groups = [portal.catalog.group(g) for g in unit.groups]
    return render(request, "unit_home.html", {
        "unit": unit, "groups": groups, "submissions": submissions,
        "max_mb": portal.config.max_upload_bytes // (1024 * 1024)})


# -- templates --------------------------------------------------------------------------------

async def template(request: web.Request) -> web.StreamResponse:
    user = await _unit_user(request)
    portal = request.app[PORTAL_KEY]
    group: str | None = request.match_info["group"]
    if group == "all":
        group = None
    elif group not in portal.catalog.unit(_unit(user)).groups:
        raise PortalError(404, "本单位不负责该重点人群，没有对应的模板。")
    data, filename = await portal.run(_build_template, portal.catalog, _unit(user), group)
    return _download(data, filename, "application/vnd.openxmlformats-officedocument."
                                     "spreadsheetml.sheet")


def _build_template(catalog: Any, unit: str, group: str | None) -> tuple[bytes, str]:
    """The blank template of `group` (or of every group of the unit) for `unit`:
    creditbus.publish.template, the same file as `creditbus template`."""
    import io

    buffer = io.BytesIO()
    build_template(catalog, unit, group).save(buffer)
    return buffer.getvalue(), default_file_name(catalog, unit, group)


def _download(data: bytes, filename: str, content_type: str) -> web.Response:
    from urllib.parse import quote

    return web.Response(body=data, content_type=content_type, headers={
        "Content-Disposition": f"attachment; filename=\"download{Path(filename).suffix}\"; "
                               f"filename*=UTF-8''{quote(filename)}"})


# -- uploads ----------------------------------------------------------------------------------

async def upload(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, "unit")
    portal = request.app[PORTAL_KEY]
    limit = portal.config.max_upload_bytes
    upload_dir: Path = request.app[UPLOAD_DIR_KEY]
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError) as exc:
        raise PortalError(400, "请通过页面上的表单上传文件。") from exc
    csrf = ""
    saved: Path | None = None
    filename = ""
    too_big = False
    try:
        while (part := await reader.next()) is not None:
            if part.name == "csrf_token":
                csrf = (await part.text())[:200]  # type: ignore[union-attr]
            elif part.name == "file" and saved is None:
                filename = Path(part.filename or "").name  # type: ignore[union-attr]
                saved = upload_dir / f"{uuid.uuid4().hex}{Path(filename).suffix.lower()}"
                size = 0
                with saved.open("wb") as out:
                    while chunk := await part.read_chunk(1 << 16):  # type: ignore[union-attr]
                        size += len(chunk)
                        if size > limit:
                            too_big = True
                            continue  # read the rest off the wire, keep nothing
                        out.write(chunk)
        await check_csrf(request, {"csrf_token": csrf})
        if too_big:
            raise PortalError(413, f"文件超过 {limit // (1024 * 1024)} MB 的上限，未导入。"
                                   "请拆分后分批上传。")
        if saved is None or not filename:
            raise PortalError(400, "请选择要上传的文件。")
        if Path(filename).suffix.lower() not in ALLOWED_SUFFIXES:
            raise PortalError(400, "文件类型不支持：请上传 .xlsx 或 .csv 文件"
                                   "（可先下载模板填写）。")
        if saved.stat().st_size == 0:
            raise PortalError(400, "上传的文件是空的，未导入。")
        await portal.run(_check_table, saved,
                         len(portal.catalog.unit(_unit(user)).groups) == 1)
    except BaseException:
        if saved is not None:
            saved.unlink(missing_ok=True)
        raise
    submission_id = uuid.uuid4().hex
    await portal.run(portal.store.create_submission, submission_id, _unit(user),
                     user.account.username, filename[:200])
    job = uploads.UploadJob(request.app[SETTINGS_KEY], portal.catalog, portal.store,
                            _unit(user), submission_id, saved,
                            receipt_timeout_s=portal.config.receipt_timeout_s,
                            credentials=portal.config.kafka_credentials)
    request.app[JOBS_KEY][submission_id] = job.progress
    uploads.start(job)
    raise web.HTTPSeeOther(f"/unit/submissions/{submission_id}")


def _check_table(path: Path, group_optional: bool) -> None:
    """Refuse, before anything is published, a file that is not a readable table with the
    template's header."""
    broken_xlsx = "该文件不是有效的 .xlsx 文件（可能已损坏或扩展名不符），未导入。"
    if path.suffix == ".xlsx":
        with path.open("rb") as handle:
            if handle.read(4) != XLSX_MAGIC:
                raise PortalError(400, broken_xlsx)
    try:
        with open_table(path) as table:
            map_headers(table.headers, group_optional=group_optional)
    except (TableError, OSError):
        if path.suffix == ".xlsx":
            raise PortalError(400, broken_xlsx) from None
        raise PortalError(400, "无法读取该 CSV 文件（须为 UTF-8 或 GB18030 编码、首行为表头），"
                               "未导入。") from None
    except HeaderError as exc:
        raise PortalError(400, f"表头不符合模板，未导入：{header_problem(str(exc))}") from None


def header_problem(text: str) -> str:
    """The publisher's header error in Chinese."""
    missing = "missing column(s): "
    if text.startswith(missing):
        return "缺少必填列 " + text.removeprefix(missing)
    return "有两列含义相同（" + text + "）"


async def _own_submission(request: web.Request, user: User) -> dict[str, Any]:
    portal = request.app[PORTAL_KEY]
    unit = None if user.is_office else _unit(user)
    found = await portal.run(portal.store.submission, request.match_info["sid"], unit)
    if found is None:
        raise PortalError(404, "未找到该提交记录。")
    return found


async def submission_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    portal = request.app[PORTAL_KEY]
    sub = await _own_submission(request, user)
    jobs = request.app[JOBS_KEY]
    sid = sub["submission_id"]
    waiting = sid in jobs and not jobs[sid].done
    if sub["status"] == "done" and sub["pending"] and not waiting:
        # rows the bus had not decided yet: wait for their receipts again, in the background
        refresh = uploads.ReceiptRefresh(
            request.app[SETTINGS_KEY], portal.store, sub["unit"], sid,
            since_ms=int(sub["started_at"]), timeout_s=portal.config.receipt_timeout_s,
            credentials=portal.config.kafka_credentials)
        jobs[sid] = refresh.progress
        uploads.start(refresh)
        waiting = True
    outcomes = await portal.run(lambda: portal.store.outcomes(sid, limit=2000))
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    return render(request, "submission.html", {"sub": sub, "outcomes": outcomes,
                                               "counts": counts, "waiting": waiting})


async def submission_status(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    sub = await _own_submission(request, user)
    progress = request.app[JOBS_KEY].get(sub["submission_id"])
    body = progress.as_json() if progress is not None else {
        "phase": "完成", "done": sub["status"] != "running", "rows": sub["total_rows"],
        "total": sub["total_rows"], "published": sub["published"], "failed": None}
    body["status"] = sub["status"] if progress is None or progress.done else "running"
    return web.json_response(body)


async def error_report(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    portal = request.app[PORTAL_KEY]
    sub = await _own_submission(request, user)
    outcomes = await portal.run(portal.store.outcomes, sub["submission_id"])
    data = error_report_csv([o for o in outcomes if o.outcome != "accepted"])
    name = f"{Path(sub['filename']).stem}_处理结果_{sub['submission_id'][:8]}.csv"
    return _download(data, name, "text/csv")


async def submissions(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    portal = request.app[PORTAL_KEY]
    rows = await portal.run(portal.store.submissions, None if user.is_office else _unit(user))
    return render(request, "submissions.html", {"submissions": rows})


# -- records ----------------------------------------------------------------------------------

async def records_form(request: web.Request) -> web.StreamResponse:
    user = await _unit_user(request)
    return render(request, "records.html", {"results": None, "q": "",
                                            "purpose": user.session.purpose or ""})


async def records_search(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = await check_csrf(request, form)
    if user.is_office:
        raise PortalError(403)
    portal = request.app[PORTAL_KEY]
    purpose = check_purpose(form.get("purpose"))
    q = str(form.get("q", "")).strip()[:64]
    await portal.run(portal.store.set_session_purpose, user.session.session_hash, purpose)
    results = await request.app[READS_KEY].unit_search(
        user, client_address(request, portal.config), q, purpose)
    return render(request, "records.html", {"results": results, "q": q, "purpose": purpose})


async def record_page(request: web.Request) -> web.StreamResponse:
    user = await _unit_user(request)
    if not user.session.purpose:
        return render(request, "purpose.html", {"action": request.path})
    return await _show_record(request, user, user.session.purpose)


async def record_with_purpose(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = await check_csrf(request, form)
    if user.is_office:
        raise PortalError(403)
    purpose = check_purpose(form.get("purpose"))
    portal = request.app[PORTAL_KEY]
    await portal.run(portal.store.set_session_purpose, user.session.session_hash, purpose)
    return await _show_record(request, user, purpose)


async def _show_record(request: web.Request, user: User, purpose: str,
                       message: str = "") -> web.StreamResponse:
    portal = request.app[PORTAL_KEY]
    row, view = await request.app[READS_KEY].unit_record(
        user, client_address(request, portal.config), request.match_info["rid"], purpose)
    return render(request, "record.html", {"row": row, "view": view, "purpose": purpose,
                                           "message": message})


async def retract(request: web.Request) -> web.StreamResponse:
    """Publish the retraction (撤回) of one of the unit's records, as the unit."""
    return await _record_action(request, "RETRACT")


async def repair(request: web.Request) -> web.StreamResponse:
    """Publish the credit repair (信用修复) of one of the unit's records, as the unit, with the
    repair decision; the bus decides (e.g. too early) and the page shows its receipt."""
    return await _record_action(request, "REPAIR")


async def _record_action(request: web.Request, action: str) -> web.StreamResponse:
    """The person's identity number, typed again, must match the record's person: the portal
    never stores it, and the event needs it (it is routed by the person)."""
    form = await request.post()
    user = await check_csrf(request, form)
    if user.is_office:
        raise PortalError(403)
    portal = request.app[PORTAL_KEY]
    settings = request.app[SETTINGS_KEY]
    record_id = request.match_info["rid"]
    row = await portal.run(portal.store.unit_record, _unit(user), record_id)
    if row is None:
        raise PortalError(404, "未找到该记录（只能处理本单位推送的记录）。")
    number = str(form.get("id_number", "")).strip().upper()
    try:
        parse_resident_id(number)
        matches = person_key(number, settings.person_key_secret) == row["person_key"]
    except IdentifierError:
        matches = False
    if not matches:
        raise PortalError(400, "身份证号码与该记录的人员不一致，操作未执行。")
    if action == "RETRACT":
        if not str(form.get("reason", "")).strip():
            raise PortalError(400, "请填写撤回原因。")
        occurred, content = _as_datetime(row["occurred_at"]), None
    else:
        occurred, content = _repair_content(form)
    event = {
        "unit": _unit(user), "occurred_at": occurred, "action": action,
        "record_id": row["record_id"],
        "person": {"id_number": number, "name": row["name"], "organisation": None,
                   "organisation_uscc": None},
        "group": row["group_code"], "category": row["category"],
        "severity": row["severity"].upper() if row["severity"] else None,
        "domain": row["domain"], "source_ref": None, "content": content,
    }
    receipt = await portal.run(_publish_one, settings, portal, _unit(user), event)
    done = {"RETRACT": "撤回", "REPAIR": "信用修复"}[action]
    if receipt is None:
        message = f"{done}申请已发送至消息总线，处理结果稍后可在本页查看。"
    elif receipt.outcome == "rejected":
        message = f"{done}申请未被受理：{receipt.message}"
    else:
        message = f"{done}申请已受理：{receipt.message}"
    purpose = user.session.purpose or f"{done}本单位记录"
    return await _show_record(request, user, purpose, message)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _repair_content(form: Any) -> tuple[datetime, tuple[str, dict[str, Any]]]:
    number = str(form.get("decision_number", "")).strip()
    authority = str(form.get("authority", "")).strip()
    try:
        day = date.fromisoformat(str(form.get("decision_date", "")).strip())
    except ValueError:
        raise PortalError(400, "修复决定日期格式应为 2026-05-06。") from None
    if not number or not authority:
        raise PortalError(400, "请填写修复决定文书号和修复决定单位。")
    content = {"decision_number": number[:128], "decision_date": day,
               "authority": authority[:128], "authority_uscc": None}
    return datetime.combine(day, time(0), tzinfo=CHINA_TZ), (REPAIR_RECORD, content)


def _publish_one(settings: Any, portal: Any, unit: str, event: dict[str, Any]) -> Any | None:
    """Publish one event as `unit` and wait a little for its receipt (None without one)."""
    since_ms = int(_time.time() * 1000)
    publish_settings = uploads.publishing_settings(settings, unit,
                                                   portal.config.kafka_credentials)
    try:
        with CreditPublisher(publish_settings, unit, catalog=portal.catalog,
                             wire=default_wire(publish_settings)) as publisher:
            event_id = publisher.publish(event)
            report = publisher.flush(30.0)
    except EventRejected as exc:
        raise PortalError(400, f"申请内容不符合规范（{exc.code}），未发送。") from None
    if not report.ok:
        raise PortalError(503, "消息总线未确认收到申请，请稍后再试。")
    try:
        found = wait_for_receipts(publish_settings, unit, [event_id], since_ms=since_ms,
                                  timeout_s=ACTION_RECEIPT_S)
    except ReceiptsError:
        return None
    return found.get(event_id)


# -- the unit's row of the progress table -----------------------------------------------------

async def progress_page(request: web.Request, message: str = "") -> web.StreamResponse:
    user = await require_user(request, "unit")
    portal = request.app[PORTAL_KEY]
    unit = portal.catalog.unit(_unit(user))
    entries = await portal.run(portal.store.progress_entries)
    history = await portal.run(portal.store.progress_history, unit.code)
    established = await portal.run(_established, portal, unit.code)
    entry = entries.get(unit.code)
    current = {
        "documents": entry.documents if entry else "；".join(unit.documents),
        "next_step": entry.next_step if entry else unit.next_step,
        "remark": entry.remark if entry else (unit.remark or ""),
    }
    return render(request, "progress_unit.html", {
        "unit": unit, "current": current, "history": history, "established": established,
        "message": message, "entry": entry})


def _established(portal: Any, unit: str) -> bool:
    rows = portal.store.select("SELECT 1 AS x FROM cb_record WHERE unit = ? LIMIT 1", (unit,))
    return bool(rows)


async def progress_save(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = await check_csrf(request, form)
    if user.is_office:
        raise PortalError(403)
    portal = request.app[PORTAL_KEY]
    texts = []
    for name in ("documents", "next_step", "remark"):
        value = str(form.get(name, "")).replace("\r\n", "\n").strip()
        if len(value) > TEXT_LIMIT:
            raise PortalError(400, f"每项内容不得超过 {TEXT_LIMIT} 个字符。")
        texts.append(value)
    if not texts[1]:
        raise PortalError(400, "“下步打算”为必填项（是否建立均须填写）。")
    version = await portal.run(portal.store.save_progress, _unit(user), *texts,
                               user.account.username)
    return await progress_page(request, f"已保存（第 {version} 版）。")


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/unit", dashboard)
    r.add_get("/unit/templates/{group}", template)
    r.add_post("/unit/upload", upload)
    r.add_get("/unit/submissions", submissions)
    r.add_get("/unit/submissions/{sid}", submission_page)
    r.add_get("/unit/submissions/{sid}/status", submission_status)
    r.add_get("/unit/submissions/{sid}/report.csv", error_report)
    r.add_get("/unit/records", records_form)
    r.add_post("/unit/records", records_search)
    r.add_get("/unit/records/{rid}", record_page)
    r.add_post("/unit/records/{rid}", record_with_purpose)
    r.add_post("/unit/records/{rid}/retract", retract)
    r.add_post("/unit/records/{rid}/repair", repair)
    r.add_get("/unit/progress", progress_page)
    r.add_post("/unit/progress", progress_save)


