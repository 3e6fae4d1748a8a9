"""`creditbus deadletters list | show | export | replay`: the operators' dead-letter console.

Reads `<prefix>.deadletter` (the worker's) and `<prefix>.sink.deadletter` (the sinks') up to
their end as it was when the command started. Every output masks identity numbers and names.
`replay` re-publishes the original message of each selected dead letter to the topic it failed
on, at most once per dead letter (creditbus.deadletters.replay). Exit codes: 0 done; 1 `replay`
refused some dead letters (each is printed with why); otherwise the codes of creditbus.errors
(2 usage or setting, 3 broker).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import KafkaException

from creditbus.cli.arguments import china_time
from creditbus.constants import CHINA_TZ
from creditbus.errors import BrokerUnavailable, ConfigError
from creditbus.settings import Settings

STAGES = ("ingest", "archive", "sink")
MESSAGE_WIDTH = 90
EXIT_OK, EXIT_REFUSED = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deadletters", help="list, show, export or replay dead letters (masked)",
        description="The dead-letter console: what was rejected, why, and replay after a fix.")
    actions = parser.add_subparsers(dest="deadletters_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="one line per dead letter that matches")
    _filters(listing)
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one dead letter: headers and decoded content")
    show.add_argument("id", metavar="ID", help="a dead-letter id as `list` prints it, "
                      "e.g. deadletter:0:17 or sink.deadletter:0:3")
    show.set_defaults(func=run_show)

    export = actions.add_parser("export", help="the dead letters that match, as JSON lines")
    _filters(export)
    export.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the .jsonl file to write (`-`: standard output)")
    export.set_defaults(func=run_export)

    replay = actions.add_parser(
        "replay", help="re-publish dead letters to the topic they failed on, once each",
        description="Re-publish the original message of each selected dead letter (by id, or "
        "every one that matches the filters) after its cause was fixed. A dead letter already "
        "replayed is skipped, so running it twice publishes nothing new.")
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids")
    _filters(replay)
    replay.add_argument("--all", action="store_true",
                        help="without ids or filters, replay every dead letter (required then)")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    replay.set_defaults(func=run_replay)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unit", help="only dead letters of this unit (its code)")
    parser.add_argument("--reason", help="only this reason code, e.g. UNKNOWN_CATEGORY")
    parser.add_argument("--stage", choices=STAGES, help="only those written by this stage")
    parser.add_argument("--since", type=china_time, metavar="ISO",
                        help="failed at or after (ISO 8601; without a zone Beijing time)")
    parser.add_argument("--until", type=china_time, metavar="ISO", help="failed before")


# --- the actions ------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    return _guarded(_list, args)


def run_show(args: argparse.Namespace) -> int:
    return _guarded(_show, args)


def run_export(args: argparse.Namespace) -> int:
    return _guarded(_export, args)


def run_replay(args: argparse.Namespace) -> int:
    return _guarded(_replay, args)


def _guarded(action: Any, args: argparse.Namespace) -> int:
    """Run an action; Kafka failures become the one-line broker error (exit 3), the bus's own
    errors reach the command line's error path (creditbus/cli/main.py)."""
    from creditbus.kafka.admin import unreachable

    console = _Console(Settings.from_env())
    try:
        return int(action(args, console))
    except KafkaException as exc:
        raise unreachable(console.settings, exc) from None
    except TimeoutError as exc:
        raise BrokerUnavailable(f"Kafka at {console.settings.bootstrap}: {exc}") from None


class _Console:
    """The settings-derived parts every action needs."""

    def __init__(self, settings: Settings) -> None:
        from creditbus.kafka.admin import require_broker
        from creditbus.kafka.clientconf import confluent_config

        require_broker(settings)
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.client = confluent_config(settings)

    def selection(self, args: argparse.Namespace) -> Any:
        from creditbus.deadletters.records import DeadLetterFilter

        return DeadLetterFilter(unit=args.unit, reason=args.reason, stage=args.stage,
                                since=args.since, until=args.until)

    def letters(self, args: argparse.Namespace) -> list[Any]:
        from creditbus.deadletters.reader import read_dead_letters

        return list(read_dead_letters(self.client, self.prefix, self.selection(args)))

    def one(self, text: str) -> Any:
        from creditbus.deadletters.reader import dead_letter_of, read_at
        from creditbus.deadletters.records import parse_dead_letter_id

        topic, partition, offset = parse_dead_letter_id(self.prefix, text)
        return dead_letter_of(read_at(self.client, topic, partition, offset))

    def wire(self) -> Any:
        from creditbus.publish.producer import default_wire

        return default_wire(self.settings)

    def replayed(self) -> dict[str, dict[str, Any]]:
        from creditbus.deadletters.replay import replayed

        return replayed(self.client, self.prefix)


def _list(args: argparse.Namespace, console: _Console) -> int:
    from creditbus.deadletters.view import summary

    done = console.replayed()
    letters = console.letters(args)
    rows = []
    for letter in letters:
        row = summary(letter, console.prefix)
        row["replayed_to"] = done.get(letter.full_id, {}).get("replayed_to")
        rows.append(row)
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, sort_keys=True))
    elif rows:
        print("\t".join(("id", "failed at (Beijing)", "stage", "reason", "unit", "source",
                         "replayed to", "message")))
        for row in rows:
            print("\t".join((row["id"], _beijing(row["failed_at"]), row["stage"], row["reason"],
                             row["unit"] or "-", row["source"] or "-",
                             row["replayed_to"] or "-", _cut(row["message"]))))
    print(f"{len(rows)} dead letter(s)", file=sys.stderr)
    return EXIT_OK


def _show(args: argparse.Namespace, console: _Console) -> int:
    from creditbus.deadletters.view import detail

    letter = console.one(args.id)
    shown = detail(letter, console.prefix, console.wire())
    shown["replayed_to"] = console.replayed().get(letter.full_id, {}).get("replayed_to")
    shown["replay_of"] = _replay_of(console, letter)
    print(json.dumps(shown, ensure_ascii=False, indent=2, sort_keys=True))
    return EXIT_OK


def _replay_of(console: _Console, letter: Any) -> str | None:
    """The dead letter whose replay failed again here, when the source message is a replay."""
    from creditbus.deadletters.reader import SourceGone, read_at
    from creditbus.deadletters.replay import REPLAY_OF_HEADER

    source = letter.source
    if source is None or letter.stage == "sink":
        return None
    try:
        msg = read_at(console.client, *source)
    except SourceGone:
        return None
    for key, value in msg.headers() or []:
        if key == REPLAY_OF_HEADER and value:
            return value.decode(errors="replace")
    return None


def _export(args: argparse.Namespace, console: _Console) -> int:
    from creditbus.deadletters.view import detail

    wire = console.wire()
    letters = console.letters(args)
    out: TextIO
    if str(args.out) == "-":
        out = sys.stdout
    else:
        out = args.out.open("w", encoding="utf-8")
    try:
        for letter in letters:
            out.write(json.dumps(detail(letter, console.prefix, wire), ensure_ascii=False,
                                 sort_keys=True) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{len(letters)} dead letter(s) exported to {args.out}", file=sys.stderr)
    return EXIT_OK


def _replay(args: argparse.Namespace, console: _Console) -> int:
    from creditbus.deadletters.replay import REFUSED, Replayer

    filtered = any((args.unit, args.reason, args.stage, args.since, args.until))
    if args.ids and filtered:
        raise ConfigError("give dead-letter ids or filters, not both")
    if not args.ids and not filtered and not args.all:
        raise ConfigError("name the dead letters to replay (ids or filters), or pass --all")
    letters = [console.one(i) for i in args.ids] if args.ids else console.letters(args)
    outcomes = Replayer(console.settings).replay(letters, dry_run=args.dry_run)
    for outcome in outcomes:
        line = f"{outcome.outcome}\t{outcome.dead_letter}"
        if outcome.target:
            line += f"\t-> {outcome.target}"
        if outcome.detail:
            line += f"\t{outcome.detail}"
        print(line)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    text = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing selected"
    print(text, file=sys.stderr)
    return EXIT_REFUSED if counts.get(REFUSED) else EXIT_OK


def _beijing(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_WIDTH else text[:MESSAGE_WIDTH - 1] + "…"
