"""`creditbus audit [--since ISO] [--person KEY] [--json]`: list the query audit trail.

Reads the audit topic (`<prefix>.audit`) from the start (or from `--since`) up to its end as it
was when the command started, and prints one line per query: when (Beijing time), who, what,
about whom, the result and the purpose. Exit code 0 (also when nothing matched), 2 on usage or
broker errors.
"""

from __future__ import annotations

import argparse
import json
import sys

from confluent_kafka import KafkaException

from creditbus.audit import AuditRecord, person_matches, read_audit  # noqa: F401 - re-exported
from creditbus.cli.arguments import china_time
from creditbus.constants import CHINA_TZ
from creditbus.errors import BrokerUnavailable
from creditbus.kafka.admin import require_broker
from creditbus.kafka.clientconf import confluent_config
from creditbus.settings import Settings
from creditbus.topics import audit_topic


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="list the audit records of archive queries")
    parser.add_argument("--since", type=china_time, metavar="ISO",
                        help="only queries at or after this time (ISO 8601; without a zone it "
                             "is Beijing time; a date means its midnight)")
    parser.add_argument("--person", metavar="KEY",
                        help="only queries about this person key (or a prefix of 8+ characters)")
    parser.add_argument("--json", action="store_true",
                        help="print the records as JSON lines instead of a table")
    parser.set_defaults(func=run)


def format_line(record: AuditRecord) -> str:
    at = record.at_datetime().astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
    who = record.caller.name or "-"
    role = record.caller.role or "-"
    if record.caller.unit:
        role += f":{record.caller.unit}"
    key = record.person_key[:16] if record.person_key else "-"
    outcome = f"{record.status} {record.result}"
    if record.reason:
        outcome += f" ({record.reason})"
    purpose = (record.purpose or "").replace("\t", " ").replace("\n", " ")
    return "\t".join((at, who, role, record.action, key, outcome,
                      str(record.records_returned), purpose))


HEADER = "\t".join(("time (Beijing)", "who", "role", "action", "person", "result", "records",
                    "purpose"))


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_broker(settings)
    topic = audit_topic(settings.topic_prefix)
    count = 0
    try:
        for record in read_audit(confluent_config(settings), topic, since=args.since,
                                 person=args.person):
            if args.json:
                print(json.dumps(record.model_dump(mode="json"), ensure_ascii=False,
                                 sort_keys=True))
            else:
                if count == 0:
                    print(HEADER)
                print(format_line(record))
            count += 1
    except (KafkaException, TimeoutError) as exc:
        raise BrokerUnavailable(f"reading {topic}: {exc}") from None
    if not args.json:
        print(f"{count} audit record(s) in {topic}", file=sys.stderr)
    return 0

