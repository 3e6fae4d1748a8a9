"""Constants every part of the bus shares, defined once.

Configuration (units, groups, categories, topics) is data (the catalog, creditbus/topics.py);
what is here is fixed by the notice or the contract and never varies between deployments.
"""

from __future__ import annotations

from datetime import timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
"""Beijing time (UTC+8, no daylight saving): the calendar of dates, deadlines and reports."""

NAMESPACE = "cn.gov.ganzhou.creditbus"
"""The Avro namespace of every record of the contract (schemas/avro)."""

CREDIT_EVENT = f"{NAMESPACE}.CreditEvent"
"""Full name of the inbound event record."""

ARCHIVE_UPDATE = f"{NAMESPACE}.ArchiveUpdate"
"""Full name of the archive update record (the workers' output, the sinks' input)."""
