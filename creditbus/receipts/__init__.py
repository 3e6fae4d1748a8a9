"""Receipts (回执): every inbound message gets exactly one outcome, on its unit's receipts topic
`<prefix>.receipts.<unit>` (docs/receipts.md)."""

from creditbus.receipts.model import (
    ACCEPTED,
    DUPLICATE,
    OUTCOME_NAMES_ZH,
    OUTCOMES,
    REJECTED,
    ROW_HEADER,
    Receipt,
    row_of_headers,
)
from creditbus.receipts.reader import (
    Progress,
    ReceiptsError,
    Summary,
    read_receipts,
    summarize,
    wait_for_receipts,
)

__all__ = [
    "ACCEPTED",
    "DUPLICATE",
    "OUTCOMES",
    "OUTCOME_NAMES_ZH",
    "REJECTED",
    "ROW_HEADER",
    "Progress",
    "Receipt",
    "ReceiptsError",
    "Summary",
    "read_receipts",
    "row_of_headers",
    "summarize",
    "wait_for_receipts",
]
