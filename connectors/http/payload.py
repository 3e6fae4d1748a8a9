"""The JSON body of a batch posted to a platform's REST API, and its idempotency key.

Body: `{"idempotency_key": "<hex>", "count": n, "updates": [<ArchiveUpdate>, ...]}`, each
update in the contract's JSON form (`creditbus.contract.jsonform`: the Avro field names,
timestamps as ISO 8601 with the +08:00 offset, dates as YYYY-MM-DD), in consumption order.

Idempotency key: hex SHA-256 of the canonical JSON of the batch's `[[person_key, version],
...]` list. The same batch posted again (a retry) carries the same key; the platform should
also ignore any (person_key, version) it already holds, since after a restart the sink may cut
batches differently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from creditbus.contract.canonical import canonical_json
from creditbus.contract.jsonform import to_json
from creditbus.contract.schemas import SchemaVersion


def idempotency_key(updates: Sequence[Mapping[str, Any]]) -> str:
    pairs = [[str(u["person_key"]), int(u["version"])] for u in updates]
    return hashlib.sha256(canonical_json(pairs)).hexdigest()


def batch_body(schema: SchemaVersion, updates: Sequence[Mapping[str, Any]]) -> tuple[bytes, str]:
    """(UTF-8 JSON body, idempotency key) of a batch of decoded updates."""
    key = idempotency_key(updates)
    body = {"idempotency_key": key, "count": len(updates),
            "updates": [to_json(schema, u) for u in updates]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), key
