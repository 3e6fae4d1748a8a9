"""The credit office's pages (信用办): the progress table live with its charts and exports,
rejections and dead letters by unit and reason, a person's archive looked up by identity
number with a stated purpose, and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from creditbus.services.portal.exports import progress_csv, progress_xlsx, with_unit_texts
from creditbus.services.portal.unit import _download
from creditbus.services.portal.web import (
    PORTAL_KEY,
    READS_KEY,
    SETTINGS_KEY,
    PortalError,
    check_csrf,
    check_purpose,
    client_address,
    render,
    require_user,
)
from creditbus.services.reports.html import bar_chart
from creditbus.services.reports.progress import (
    ANNEX_HEADER,
    COMPLETENESS_NOTE,
    FACTS_HEADER,
    GROUPS_HEADER,
    ProgressReport,
    load_report,
)
from markupsafe import Markup

from creditbus.audit import AuditRecord, read_audit
from creditbus.constants import CHINA_TZ
from creditbus.kafka.clientconf import confluent_config
from creditbus.topics import audit_topic

AUDIT_ROWS = 500


def _report(portal: Any) -> ProgressReport:
    report = load_report(portal.catalog, portal.store.db())
    return with_unit_texts(report, portal.store.progress_entries())


async def progress(request: web.Request) -> web.StreamResponse:
    await require_user(request, "office")
    portal = request.app[PORTAL_KEY]
    report = await portal.run(_report, portal)
    rows = report.rows
    most = max((r.records for r in rows), default=0)
    records_chart = bar_chart([(r.unit_name, float(r.records), str(r.records)) for r in rows],
                              maximum=float(most or 1), title="各单位档案记录数")
    completeness_chart = bar_chart(
        [(g.name, g.completeness or 0.0,
          "—" if g.completeness is None else f"{g.completeness:.1f}%") for g in report.groups],
        maximum=100.0, label_width=230, color="#2e86c1", title="各重点人群档案完整度")
    return render(request, "office_progress.html", {
        "report": report, "annex_header": ANNEX_HEADER, "facts_header": FACTS_HEADER,
        "groups_header": GROUPS_HEADER, "note": COMPLETENESS_NOTE,
        "records_chart": Markup(records_chart), "completeness_chart": Markup(completeness_chart),
        "persons": sum(r.persons for r in rows), "records": sum(r.records for r in rows)})


async def export(request: web.Request) -> web.StreamResponse:
    await require_user(request, "office")
    portal = request.app[PORTAL_KEY]
    kind = request.match_info["kind"]
    report = await portal.run(_report, portal)
    stamp = f"{report.generated_at:%Y%m%d}"
    if kind == "xlsx":
        data = await portal.run(progress_xlsx, report)
        return _download(data, f"重点人群信用档案建设情况表_{stamp}.xlsx",
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    if kind == "csv":
        data = await portal.run(progress_csv, report)
        return _download(data, f"重点人群信用档案建设情况表_{stamp}.csv", "text/csv")
    raise PortalError(404)


# -- a person's archive -----------------------------------------------------------------------

async def lookup_form(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, "office")
    return render(request, "lookup.html", {"view": None, "purpose": user.session.purpose or ""})


async def lookup(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = await check_csrf(request, form)
    if not user.is_office:
        raise PortalError(403)
    portal = request.app[PORTAL_KEY]
    purpose = check_purpose(form.get("purpose"))
    await portal.run(portal.store.set_session_purpose, user.session.session_hash, purpose)
    view = await request.app[READS_KEY].lookup(
        user, client_address(request, portal.config), str(form.get("id_number", "")), purpose)
    return render(request, "lookup.html", {"view": view, "purpose": purpose})


# -- the audit trail --------------------------------------------------------------------------

def _matches(record: AuditRecord, who: str, action: str, result: str) -> bool:
    if who and who not in (record.caller.name or "") and who != (record.caller.unit or ""):
        return False
    if action and record.action != action:
        return False
    return not (result and record.result != result)


def _read_trail(settings: Any, since: datetime | None, person: str | None, who: str,
                action: str, result: str) -> list[AuditRecord]:
    found = [r for r in read_audit(confluent_config(settings),
                                   audit_topic(settings.topic_prefix), since=since,
                                   person=person or None, timeout=15.0)
             if _matches(r, who, action, result)]
    return found[-AUDIT_ROWS:][::-1]


async def audit_trail(request: web.Request) -> web.StreamResponse:
    await require_user(request, "office")
    portal = request.app[PORTAL_KEY]
    q = request.query
    since_text = q.get("since", "").strip()
    since = None
    if since_text:
        try:
            since = datetime.fromisoformat(since_text)
        except ValueError:
            raise PortalError(400, "起始时间格式应为 2026-12-01 或 2026-12-01T08:00。") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=CHINA_TZ)
    filters = {k: q.get(k, "").strip()[:80] for k in ("person", "who", "action", "result")}
    try:
        records = await portal.run(_read_trail, request.app[SETTINGS_KEY], since,
                                   filters["person"], filters["who"], filters["action"],
                                   filters["result"])
    except Exception as exc:  # the broker unreachable
        raise PortalError(503, "暂时无法读取审计记录（消息总线不可用）。") from exc
    return render(request, "audit.html", {"records": records, "since": since_text,
                                          "filters": filters, "beijing": CHINA_TZ})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/office", progress)
    r.add_get("/office/export.{kind}", export)
    r.add_get("/office/lookup", lookup_form)
    r.add_post("/office/lookup", lookup)
    r.add_get("/office/audit", audit_trail)
