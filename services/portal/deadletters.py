"""The office's page of rejections and dead letters: the bus's rejections per unit and reason
(from the receipts), the rows refused by the portal's own uploads, and the dead-letter console
of creditbus.deadletters (list with filters, replay of the selected ones, at most once each).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from creditbus.services.portal.web import (
    PORTAL_KEY,
    SETTINGS_KEY,
    PortalError,
    check_csrf,
    render,
    require_user,
)

from creditbus.deadletters.reader import dead_letter_of, read_at, read_topic
from creditbus.deadletters.records import DeadLetterFilter, parse_dead_letter_id
from creditbus.deadletters.replay import Replayer, replayed
from creditbus.deadletters.view import summary
from creditbus.kafka.clientconf import confluent_config
from creditbus.receipts import REJECTED, ReceiptsError, read_receipts

STAGES = ("ingest", "archive", "sink")
LIST_LIMIT = 500
REPLAY_NAMES_ZH = {"replayed": "已重放", "already": "此前已重放", "refused": "拒绝重放",
                   "would": "将重放"}


def bus_rejections(settings: Any, units: list[str]) -> list[tuple[str, str, int]]:
    """(unit, reason, count) of the rejected receipts of every unit, most first."""
    counts: Counter[tuple[str, str]] = Counter()
    for receipt in read_receipts(settings, units):
        if receipt.outcome == REJECTED:
            counts[(receipt.unit, receipt.reason or "")] += 1
    return sorted(((u, r, n) for (u, r), n in counts.items()), key=lambda x: (x[0], -x[2]))


def dead_letters(settings: Any, selection: DeadLetterFilter) -> list[dict[str, Any]]:
    client = confluent_config(settings)
    done = replayed(client, settings.topic_prefix)
    rows = []
    letters = (dead_letter_of(msg) for topic in selection.topics(settings.topic_prefix)
               for msg in read_topic(client, topic))
    for letter in letters:
        if not selection.matches(letter):
            continue
        row = summary(letter, settings.topic_prefix)
        row["replayed_to"] = done.get(letter.full_id, {}).get("replayed_to")
        rows.append(row)
    return rows[-LIST_LIMIT:][::-1]


def replay(settings: Any, ids: list[str]) -> list[Any]:
    client = confluent_config(settings)
    letters = []
    for text in ids:
        topic, partition, offset = parse_dead_letter_id(settings.topic_prefix, text)
        letters.append(dead_letter_of(read_at(client, topic, partition, offset)))
    return Replayer(settings).replay(letters)


def _selection(query: Any) -> DeadLetterFilter:
    stage = query.get("stage", "").strip() or None
    if stage is not None and stage not in STAGES:
        raise PortalError(400, "阶段应为 ingest、archive 或 sink。")
    return DeadLetterFilter(unit=query.get("unit", "").strip() or None,
                            reason=query.get("reason", "").strip() or None, stage=stage)


async def page(request: web.Request, outcomes: list[Any] | None = None) -> web.StreamResponse:
    await require_user(request, "office")
    portal = request.app[PORTAL_KEY]
    settings = request.app[SETTINGS_KEY]
    selection = _selection(request.query)
    units = [u.code for u in portal.catalog.units]
    uploads = await portal.run(portal.store.outcome_counts)
    try:
        bus = await portal.run(bus_rejections, settings, units)
    except ReceiptsError:
        bus = None
    try:
        letters = await portal.run(dead_letters, settings, selection)
    except Exception as exc:  # the broker unreachable
        raise PortalError(503, "暂时无法读取死信（消息总线不可用）。") from exc
    by_reason = Counter((row["unit"] or "", row["reason"]) for row in letters)
    return render(request, "office_rejections.html", {
        "uploads": uploads, "bus": bus, "letters": letters,
        "letter_counts": sorted(by_reason.items(), key=lambda x: (x[0][0], -x[1])),
        "unit_names": {u.code: u.name_zh for u in portal.catalog.units},
        "filters": {"unit": selection.unit or "", "reason": selection.reason or "",
                    "stage": selection.stage or ""},
        "outcomes": outcomes, "outcome_names": REPLAY_NAMES_ZH})


async def replay_selected(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = await check_csrf(request, form)
    if not user.is_office:
        raise PortalError(403)
    ids = [str(v) for v in form.getall("id", [])][:LIST_LIMIT]
    if not ids:
        raise PortalError(400, "请先勾选要重放的死信。")
    portal = request.app[PORTAL_KEY]
    try:
        outcomes = await portal.run(replay, request.app[SETTINGS_KEY], ids)
    except ValueError as exc:
        raise PortalError(400, f"死信编号无效：{exc}") from None
    return await page(request, outcomes)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/office/rejections", page)
    r.add_post("/office/deadletters/replay", replay_selected)
