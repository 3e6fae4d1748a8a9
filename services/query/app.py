"""The query service: archives from the platform database, by role, every query audited.

Endpoints (one aiohttp server on `CREDITBUS_QUERY_PORT`):

- `GET /v1/persons/{person_key}`: the archive of a person key.
- `POST /v1/persons/lookup` with `{"id_number": "...", "purpose": "..."}`: the same by identity
  number, which travels in the body only (a URL would end up in access logs).
- `GET /healthz`, `GET /metrics` (Prometheus).

A query needs `Authorization: Bearer <token>` (creditbus.services.query.tokens) and a purpose
(header `X-Query-Purpose`, UTF-8 or percent-encoded UTF-8, or the body's `purpose`), non-empty
and at most 200 characters. Every query, answered or refused, produces one audit record
(creditbus.audit) on the audit topic, and the answer leaves only once the broker has that
record; if it cannot be delivered, the caller gets 503 and no data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from aiohttp import web
from creditbus.services.query.access import Principal, archive_view
from creditbus.services.query.auditor import AuditLog, AuditUnavailable
from creditbus.services.query.listener import HSTS
from creditbus.services.query.store import ArchiveRows, ArchiveStore
from creditbus.services.query.tokens import TokenStore
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from creditbus import metrics
from creditbus.audit import PURPOSE_MAX_CHARS, AuditRecord, Caller, Result
from creditbus.catalog import Catalog, default_catalog
from creditbus.constants import CHINA_TZ
from creditbus.errors import CreditbusError
from creditbus.identity import IdentifierError, mask_id, parse_resident_id, person_key
from creditbus.kafka.admin import ensure_bus_topics
from creditbus.kafka.clientconf import confluent_config
from creditbus.metrics import PROCESS_STARTED, PROCESS_UP
from creditbus.settings import Settings
from creditbus.topics import audit_topic

log = logging.getLogger(__name__)

PURPOSE_HEADER = "X-Query-Purpose"
MAX_BODY_BYTES = 16 * 1024
_PERSON_KEY = re.compile(r"^[0-9a-f]{64}$")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

QUERIES = metrics.QUERIES
QUERY_SECONDS = metrics.QUERY_SECONDS
AUDIT_FAILURES = metrics.QUERY_AUDIT_FAILURES

MESSAGES_ZH = {
    "NO_TOKEN": "缺少访问令牌（Authorization: Bearer ...）。",
    "BAD_TOKEN": "访问令牌无效。",
    "PURPOSE_REQUIRED": "查询须说明查询目的（请求头 X-Query-Purpose 或字段 purpose）。",
    "PURPOSE_TOO_LONG": f"查询目的不得超过 {PURPOSE_MAX_CHARS} 个字符。",
    "BAD_REQUEST": "请求体须为 JSON 对象，并包含字符串字段 id_number。",
    "BAD_PERSON_KEY": "人员标识格式不正确（应为 64 位小写十六进制）。",
    "ID_INVALID": "身份证号码无效。",
    "NOT_FOUND": "未找到可供查询的信用档案。",
    "DATABASE_UNAVAILABLE": "平台数据库暂不可用，请稍后再试。",
    "AUDIT_UNAVAILABLE": "审计记录未能写入，本次查询结果不予返回，请稍后再试。",
    "INTERNAL_ERROR": "服务内部错误。",
}
NO_VISIBLE_RECORDS = "NO_VISIBLE_RECORDS"
"""Audit reason of a 404 for a person who exists but has no record the caller may see."""
_RESULT_OF_STATUS: dict[int, Result] = {200: "allowed", 400: "invalid", 401: "denied",
                                        403: "denied", 404: "not_found"}


class AuditSink(Protocol):
    async def write(self, record: AuditRecord) -> None: ...

    def close(self, timeout_s: float = 10.0) -> int: ...


class Refusal(CreditbusError):
    """A refused query: `reason` is the answer's code, `audit_reason` what the audit says
    (it may tell more than the caller may learn)."""

    def __init__(self, status: int, reason: str, audit_reason: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.audit_reason = audit_reason or reason


@dataclass
class Attempt:
    """What the audit record of one request will say."""

    action: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    caller: Caller = field(default_factory=Caller)
    person_key: str | None = None
    purpose: str | None = None
    records: int = 0


@dataclass
class QueryService:
    catalog: Catalog
    tokens: TokenStore
    store: ArchiveStore
    audit: AuditSink
    secret: bytes
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="query-db"))

    # -- the two queries --------------------------------------------------------------------

    async def get_person(self, request: web.Request) -> web.Response:
        attempt = Attempt("get")
        key = request.match_info["person_key"]
        problem = None if _PERSON_KEY.match(key) else "BAD_PERSON_KEY"
        if problem is None:
            attempt.person_key = key
        return await self._answer(request, attempt, problem, None)

    async def lookup_person(self, request: web.Request) -> web.Response:
        attempt = Attempt("lookup")
        problem: str | None = None
        body_purpose: Any = None
        id_number: str | None = None
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("id_number"), str):
            id_number = body["id_number"].strip().upper()
            body_purpose = body.get("purpose")
            try:
                parse_resident_id(id_number)
                attempt.person_key = person_key(id_number, self.secret)
            except IdentifierError:
                problem = "ID_INVALID"
        else:
            problem = "BAD_REQUEST"
            if isinstance(body, dict):
                body_purpose = body.get("purpose")
        return await self._answer(request, attempt, problem, body_purpose, id_number)

    # -- the common path: authenticate, check, read, audit, answer ---------------------------

    async def _answer(self, request: web.Request, attempt: Attempt, problem: str | None,
                      body_purpose: Any, id_number: str | None = None) -> web.Response:
        started = time.monotonic()
        payload: dict[str, Any]
        try:
            attempt.purpose = _purpose(request.headers.get(PURPOSE_HEADER), body_purpose)
            principal = self._authenticate(request, attempt)
            if problem is not None:
                raise Refusal(400, problem)
            _check_purpose(attempt.purpose)
            if attempt.person_key is None:  # cannot happen: every path without a key is a problem
                raise Refusal(400, "BAD_REQUEST")
            view = await self._read(principal, attempt.person_key)
            attempt.records = len(view["records"])
            status, reason, payload = 200, None, view
        except Refusal as refusal:
            status, reason = refusal.status, refusal.audit_reason
            payload = {"error": refusal.reason, "message": MESSAGES_ZH[refusal.reason]}
        except Exception:
            log.exception("query %s failed", attempt.request_id)
            status, reason = 500, "INTERNAL_ERROR"
            payload = {"error": reason, "message": MESSAGES_ZH[reason]}

        record = AuditRecord(
            action=attempt.action, caller=attempt.caller, remote=request.remote,
            person_key=attempt.person_key, purpose=attempt.purpose, status=status,
            result=_RESULT_OF_STATUS.get(status, "error"), reason=reason,
            records_returned=attempt.records if status == 200 else 0,
            request_id=attempt.request_id)
        try:
            await self.audit.write(record)
        except AuditUnavailable as exc:
            AUDIT_FAILURES.inc()
            log.error("audit record of query %s not delivered: %s", attempt.request_id, exc)
            if status == 200:
                status, reason = 503, "AUDIT_UNAVAILABLE"
                payload = {"error": reason, "message": MESSAGES_ZH[reason]}

        QUERIES.labels(attempt.caller.role or "unknown", str(status)).inc()
        QUERY_SECONDS.observe(time.monotonic() - started)
        return _json(payload, status, attempt.request_id, id_number)

    def _authenticate(self, request: web.Request, attempt: Attempt) -> Principal:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(401, "NO_TOKEN")
        entry = self.tokens.find(token.strip())
        if entry is None:
            raise Refusal(401, "BAD_TOKEN")
        attempt.caller = Caller(name=entry.name, role=entry.role, unit=entry.unit)
        return Principal(entry.name, entry.role, entry.unit)

    async def _read(self, principal: Principal, key: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            rows: ArchiveRows | None = await loop.run_in_executor(
                self.executor, lambda: self.store.read(key,
                                                       with_history=principal.role == "office"))
        except Exception as exc:  # the DB drivers' errors have no common base class
            log.warning("platform database read failed: %s", type(exc).__name__)
            raise Refusal(503, "DATABASE_UNAVAILABLE") from exc
        if rows is None:
            raise Refusal(404, "NOT_FOUND")
        view = archive_view(principal, rows.person, rows.records, rows.history, self.catalog,
                            beijing_today())
        if view is None:  # the same answer as for an unknown person
            raise Refusal(404, "NOT_FOUND", NO_VISIBLE_RECORDS)
        return view

    # -- health and metrics ------------------------------------------------------------------

    async def healthz(self, _request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            database = await loop.run_in_executor(self.executor, self.store.ready)
        except Exception:  # any driver error means: not ready
            log.debug("health check: database not ready", exc_info=True)
            database = False
        body = {"status": "ok" if database else "degraded", "database": database,
                "tokens": len(self.tokens)}
        return web.json_response(body, status=200 if database else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.audit.close)
        self.executor.shutdown(wait=True)
        self.store.close()


def beijing_today() -> date:
    return datetime.now(CHINA_TZ).date()


def _purpose(header: str | None, body_value: Any) -> str | None:
    """The stated purpose (header first, then body), decoded and with control characters
    replaced; None when neither was given."""
    if header and header.strip():
        text = header
        if _PERCENT.search(text):
            try:
                text = unquote(text, errors="strict")
            except UnicodeDecodeError:
                pass  # a literal % in a plain UTF-8 purpose
    elif isinstance(body_value, str):
        text = body_value
    else:
        return None
    return _CONTROL.sub(" ", text).strip()


def _check_purpose(purpose: str | None) -> None:
    if not purpose:
        raise Refusal(400, "PURPOSE_REQUIRED")
    if len(purpose) > PURPOSE_MAX_CHARS:
        raise Refusal(400, "PURPOSE_TOO_LONG")


def _json(payload: dict[str, Any], status: int, request_id: str,
          id_number: str | None) -> web.Response:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    if id_number and id_number in text:  # belt and braces: never echo the number asked for
        text = text.replace(id_number, mask_id(id_number))
    headers = {"X-Request-Id": request_id, "Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="creditbus"'
    return web.Response(text=text, status=status, content_type="application/json",
                        charset="utf-8", headers=headers)


def create_app(service: QueryService, *, hsts: bool = False) -> web.Application:
    """The service's routes; `hsts` (when served over HTTPS): every answer says so."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    if hsts:
        async def strict_transport(_request: web.Request, response: web.StreamResponse) -> None:
            response.headers["Strict-Transport-Security"] = HSTS

        app.on_response_prepare.append(strict_transport)
    app.router.add_get("/v1/persons/{person_key}", service.get_person)
    app.router.add_post("/v1/persons/lookup", service.lookup_person)
    app.router.add_get("/healthz", service.healthz)
    app.router.add_get("/metrics", service.metrics)

    async def started(_app: web.Application) -> None:
        PROCESS_UP.labels("query").set(1)
        PROCESS_STARTED.labels("query").set(time.time())

    async def cleanup(_app: web.Application) -> None:
        PROCESS_UP.labels("query").set(0)
        await service.close()

    app.on_startup.append(started)
    app.on_cleanup.append(cleanup)
    return app


def build_service(settings: Settings, tokens_file: Path) -> QueryService:
    """The service of a deployment: catalog, tokens, database and audit producer."""
    catalog = default_catalog(settings.catalog_dir)
    tokens = TokenStore(tokens_file, catalog)
    audit = AuditLog(confluent_config(settings), audit_topic(settings.topic_prefix))
    return QueryService(catalog, tokens, ArchiveStore(settings.database_url), audit,
                        settings.person_key_secret)


def ensure_audit_topic(settings: Settings) -> None:
    """Create the audit topic if it is missing (one partition: one ordered trail)."""
    ensure_bus_topics(settings, "audit")


def serve(service: QueryService, sock: socket.socket,
          tls: ssl.SSLContext | None = None) -> None:
    """Serve on the bound `sock` (creditbus.services.query.listener.bind), HTTPS with HSTS
    when `tls` is given, until SIGINT or SIGTERM."""
    host, port = sock.getsockname()[:2]
    log.info("query service on %s://%s:%d (tokens: %d)", "https" if tls else "http", host, port,
             len(service.tokens))
    web.run_app(create_app(service, hsts=tls is not None), sock=sock, ssl_context=tls,
                print=None, access_log=logging.getLogger("creditbus.query.access"))
