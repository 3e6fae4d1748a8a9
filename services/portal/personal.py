"""Reads of personal data from the portal, each with a stated purpose and one audit record on
the audit topic, written by the query service's mechanism (creditbus.audit's AuditRecord,
creditbus.services.query.auditor's AuditLog): the page is shown only once the broker has the
record; without it the user gets 503 and no data. The views are the query service's
(`access.archive_view`) for the caller's role.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from creditbus.services.portal.store import PortalStore
from creditbus.services.portal.web import PortalError, User
from creditbus.services.query.access import Principal, archive_view
from creditbus.services.query.app import AuditSink, beijing_today
from creditbus.services.query.auditor import AuditUnavailable
from creditbus.services.query.store import ArchiveStore

from creditbus.audit import AuditRecord, Caller, Result
from creditbus.catalog import Catalog
from creditbus.identity import IdentifierError, parse_resident_id, person_key

T = TypeVar("T")
SERVICE = "portal"
AUDIT_FAILED = "审计记录未能写入，本次查询结果不予显示，请稍后再试。"
_RESULT: dict[int, Result] = {200: "allowed", 400: "invalid", 403: "denied", 404: "not_found"}


def principal_of(user: User) -> Principal:
    role = "office" if user.is_office else "unit"
    return Principal(user.account.username, role, user.account.unit)  # type: ignore[arg-type]


@dataclass
class PersonalReads:
    catalog: Catalog
    archives: ArchiveStore
    store: PortalStore
    audit: AuditSink
    secret: bytes

    async def _audited(self, user: User, remote: str, action: str, purpose: str,
                       key: str | None, read: Callable[[], T], count: Callable[[T], int],
                       ) -> T:
        """Run `read` in a thread, write the audit record, then hand the result out."""
        status, reason, result, records = 200, None, None, 0
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, read)
            records = count(result)
        except PortalError as exc:
            status = exc.status_code
            reason = {400: "INVALID", 404: "NOT_FOUND"}.get(status, "REFUSED")
            failure: PortalError | None = exc
        else:
            failure = None
        caller = Caller(name=user.account.username, role=principal_of(user).role,
                        unit=user.account.unit)
        record = AuditRecord(service=SERVICE, action=action, caller=caller, remote=remote,
                             person_key=key, purpose=purpose, status=status,
                             result=_RESULT.get(status, "error"), reason=reason,
                             records_returned=records, request_id=uuid.uuid4().hex)
        try:
            await self.audit.write(record)
        except AuditUnavailable as exc:
            raise PortalError(503, AUDIT_FAILED) from exc
        if failure is not None:
            raise failure
        return result  # type: ignore[return-value]

    async def lookup(self, user: User, remote: str, id_number: str,
                     purpose: str) -> dict[str, Any]:
        """The office's archive of a person by identity number (never kept, never shown)."""
        number = id_number.strip().upper()
        try:
            parse_resident_id(number)
        except IdentifierError:
            key = None
        else:
            key = person_key(number, self.secret)
        principal = principal_of(user)

        def read() -> dict[str, Any]:
            if key is None:
                raise PortalError(400, "身份证号码无效。")
            rows = self.archives.read(key, with_history=principal.role == "office")
            view = None if rows is None else archive_view(
                principal, rows.person, rows.records, rows.history, self.catalog,
                beijing_today())
            if view is None:
                raise PortalError(404, "未找到可供查询的信用档案。")
            return view

        return await self._audited(user, remote, "lookup", purpose, key, read,
                                   lambda v: len(v["records"]))

    async def unit_search(self, user: User, remote: str, text: str,
                          purpose: str) -> list[dict[str, Any]]:
        unit = str(user.account.unit)
        return await self._audited(user, remote, "portal.search", purpose, None,
                                   lambda: self.store.unit_records(unit, text), len)

    async def unit_record(self, user: User, remote: str, record_id: str,
                          purpose: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the record's row, the archive as the unit sees it) of one of the unit's records;
        404 for anything else, another unit's record included."""
        unit = str(user.account.unit)
        found = await asyncio.get_running_loop().run_in_executor(
            None, self.store.unit_record, unit, record_id)
        key = found["person_key"] if found else None
        principal = principal_of(user)

        def read() -> tuple[dict[str, Any], dict[str, Any]]:
            if found is None:
                raise PortalError(404, "未找到该记录（只能查看本单位推送的记录）。")
            rows = self.archives.read(found["person_key"], with_history=False)
            view = None if rows is None else archive_view(
                principal, rows.person, rows.records, rows.history, self.catalog,
                beijing_today())
            if view is None:
                raise PortalError(404, "未找到该记录（只能查看本单位推送的记录）。")
            view["records"] = [r for r in view["records"] if r.get("record_id") == record_id]
            return found, view

        return await self._audited(user, remote, "portal.record", purpose, key, read,
                                   lambda r: len(r[1]["records"]))
