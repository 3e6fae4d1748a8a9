"""`creditbus demo`: the whole bus on the embedded default, with sample department data.

Starts the local broker, generates sample spreadsheets of several units as departments keep
them, imports them through the publisher, runs a stream worker and the platform sink as the
real processes, waits until every event is in the platform database (SQLite), verifies the
hash chains and says where everything is. The worker and sink are separate commands of their
own packages; the demo runs them as subprocesses, as an operator would.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from creditbus.catalog import default_catalog
from creditbus.cli.kafka_cmd import local_broker
from creditbus.kafka.clientconf import confluent_auth
from creditbus.kafka.lag import workers_lag
from creditbus.settings import Settings

DEMO_UNITS = ("justice", "edu", "health", "tax", "fire", "culture_tourism", "housing", "amr",
              "org", "fin_office", "audit")
"""Units whose sample data the demo imports; the other units publish nothing (reads 否)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the bus end to end on sample data")
    parser.add_argument("--rows", type=int, default=300, help="sample rows per unit")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--stop", action="store_true",
                        help="stop what a demo left running (worker, sink, portal, broker)")
    parser.set_defaults(func=run)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "creditbus.cli.main", *args]


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


BACKGROUND = ("worker", "sink", "portal")
"""The demo's processes left running after it (pid files in the demo folder)."""


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    demo_dir = settings.home / "demo"
    if args.stop:
        _stop_background(demo_dir)
        stopped = local_broker(settings).down()
        print("stopped the local broker" if stopped else "no local broker was running")
        return 0
    inputs = demo_dir / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    _stop_background(demo_dir)  # a previous demo's processes: this one starts its own

    _step("Starting the local Apache Kafka broker (KRaft, 127.0.0.1)")
    broker = local_broker(settings)
    state = broker.up()  # ConfigError (no Java, a broken broker): one line, exit 2
    print(f"Kafka {state.version} at {state.bootstrap}")
    env = dict(os.environ, CREDITBUS_BOOTSTRAP=state.bootstrap, CREDITBUS_HOME=str(settings.home))
    if subprocess.run(_cli("topics", "ensure"), env=env).returncode != 0:
        return 1

    _step(f"Writing sample department spreadsheets to {inputs}")
    files = _write_samples(inputs, args.rows, args.seed)

    _step("Starting a stream worker (Faust): validate, deduplicate, enrich, build archives")
    worker_log = demo_dir / "worker.log"
    worker = _start_background("worker", _cli("worker"), env, demo_dir)
    finished = False
    try:
        _step("Importing the spreadsheets through the publisher SDK (creditbus publish)")
        for unit, path in files:
            report = demo_dir / f"errors-{unit}.csv"
            code = subprocess.run(
                _cli("publish", "--unit", unit, str(path), "--error-report", str(report)),
                env=env,
            ).returncode
            if code not in (0, 1):
                print(f"error: importing {path.name} failed (exit {code})", file=sys.stderr)
                return 1

        _step("Waiting for the worker to process every event")
        if not _wait_for_worker(worker, state.bootstrap, settings, worker_log):
            return 1

        _step("A unit's follow-up file, published with --wait: each row gets its receipt (回执)")
        followup = _write_followup(inputs, files)
        if followup is not None:
            unit, path = followup
            code = subprocess.run(
                _cli("publish", "--unit", unit, str(path), "--wait", "--wait-timeout", "120",
                     "--error-report", str(demo_dir / f"errors-{path.stem}.csv")),
                env=env).returncode
            print(f"  (exit {code}: 1 means some rows were rejected, as this file intends)")

        _step("Streaming archive updates into the platform database (creditbus sink)")
        sink = subprocess.run(_cli("sink", "--until-idle", "5"), env=env)
        if sink.returncode != 0:
            print("error: the sink failed (its output is above)", file=sys.stderr)
            return 1
        finished = True
    finally:
        if not finished:  # nothing left running behind a failed demo
            _stop_background(demo_dir)

    _step("Verifying every person's hash chain in the platform database (creditbus verify)")
    verified = subprocess.run(_cli("verify"), env=env).returncode

    _step("Building the progress table (重点人群信用档案建设情况表) from the archives")
    reports = demo_dir / "reports"
    subprocess.run(_cli("report", "progress", "--out", str(reports)), env=env)

    _step("Receipts (回执) per unit today: accepted, duplicate, rejected (creditbus receipts)")
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))  # China's day
    subprocess.run(_cli("receipts", "summary", "--since", today), env=env)

    _step("Starting the web portal (creditbus portal) with demo accounts; the worker and a "
          "sink keep running for its uploads")
    _start_background("sink", _cli("sink"), env, demo_dir)
    portal_url, accounts = _start_portal(settings, env, demo_dir)

    print(f"""
Done. The platform database (SQLite) is {settings.database_url.removeprefix('sqlite:///')}
  the progress table (xlsx, csv, html): {reports}
  rejected rows of each import:  {demo_dir}/errors-<unit>.csv
  a unit's receipts:             .venv/bin/creditbus receipts list --unit justice
  the logs of the worker, sink and portal: {demo_dir}/{{worker,sink,portal}}.log
  the broker ({state.bootstrap}), the worker, the sink and the portal keep running;
  stop them all with `make stop` (or `.venv/bin/creditbus demo --stop`).

The web portal: {portal_url}
  demo accounts (user / password, new each run):""")
    for user, password, what in accounts:
        print(f"    {user:<10} {password:<18} {what}")
    return 0 if verified == 0 else 1


DEMO_PORTAL_UNITS = ("justice", "edu", "health")


def _start_portal(settings: Settings, env: dict[str, str],
                  demo_dir: Path) -> tuple[str, list[tuple[str, str, str]]]:
    """Demo accounts (the office and three units, fresh passwords) and a portal process left
    running like the broker; the one a previous demo left is stopped first."""
    import secrets
    import urllib.request

    from creditbus.devtools.kafka.ports import free_port
    from creditbus.services.portal.accounts import hash_password
    from creditbus.services.portal.store import Account, PortalStore

    catalog = default_catalog(settings.catalog_dir)
    store = PortalStore(settings.database_url)
    accounts = []
    try:
        store.migrate()
        for user, unit in (("office", None), *((u, u) for u in DEMO_PORTAL_UNITS)):
            password = secrets.token_urlsafe(9)
            name = catalog.unit(unit).name_zh if unit else "信用办"
            store.save_account(Account(user, "unit" if unit else "office", unit, name,
                                       hash_password(password)))
            accounts.append((user, password, f"{name}（{'单位账号' if unit else '信用办'}）"))
    finally:
        store.close()
    port = settings.portal_port
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
        port = free_port()  # taken by something else
    except OSError:
        pass
    portal = _start_background("portal", _cli("portal", "--port", str(port)), env, demo_dir)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and portal.poll() is None:
        try:
            urllib.request.urlopen(url + "healthz", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    return url, accounts


def _wait_for_worker(worker: subprocess.Popen[bytes], bootstrap: str, settings: Settings,
                     log: Path, timeout: float = 600.0) -> bool:
    """Until the worker's consumer group has committed past every inbound and internal message."""
    units = [u.code for u in default_catalog(settings.catalog_dir).units]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print("error: the worker stopped:\n" + "\n".join(tail), file=sys.stderr)
            return False
        lag = workers_lag(bootstrap, settings.topic_prefix, units, auth=confluent_auth(settings))
        if lag == 0:
            return True
        print(f"  {lag:,} messages still to process", flush=True)
        time.sleep(2)
    print(f"error: the worker did not catch up within {timeout:.0f} s; see {log}",
          file=sys.stderr)
    return False


def _start_background(name: str, cmd: list[str], env: dict[str, str],
                      demo_dir: Path) -> subprocess.Popen[bytes]:
    """Start `creditbus <name>` in a session of its own (it outlives the demo), logging to
    <name>.log, its pid in <name>.pid for `creditbus demo --stop`."""
    with open(demo_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    (demo_dir / f"{name}.pid").write_text(str(process.pid))
    return process


def _stop_background(demo_dir: Path, timeout: float = 30.0) -> None:
    """Stop the processes a demo left running (only ours: the pid's command line is checked)."""
    for name in BACKGROUND:
        pid_file = demo_dir / f"{name}.pid"
        try:
            pid = int(pid_file.read_text())
            if b"creditbus" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                raise ProcessLookupError(pid)  # a reused pid
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
            continue
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        print(f"stopped the demo's {name} (pid {pid})")


def _write_followup(directory: Path, files: list[tuple[str, Path]]) -> tuple[str, Path] | None:
    """A unit's second file whose rows show each kind of receipt: a row sent again (duplicate),
    a retraction of a record id the archive does not know (rejected by the worker), an identity
    number with a wrong check digit (rejected before sending) and a new record (accepted)."""
    import csv

    csv_files = [(unit, path) for unit, path in files if path.suffix == ".csv"]
    if not csv_files:
        return None
    unit, source = csv_files[0]
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, first = rows[0], rows[1]
    column = {name: i for i, name in enumerate(header)}
    retraction = list(first)
    retraction[column["记录编号"]] = "DEMO-NO-SUCH-RECORD"
    retraction[column["操作(新增/撤销)"]] = "撤销"
    bad_id = list(first)
    number = bad_id[column["身份证号码"]]
    bad_id[column["身份证号码"]] = number[:-1] + ("0" if number[-1] != "0" else "1")
    bad_id[column["记录编号"]] += "-B"
    new = list(first)
    new[column["记录编号"]] += "-N"
    path = directory / f"{unit}-followup.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([header, first, retraction, bad_id, new])
    print(f"  {path.name}: the first row again, a retraction of an unknown record, a wrong "
          "check digit, a new record")
    return unit, path


def _write_samples(directory: Path, rows: int, seed: int) -> list[tuple[str, Path]]:
    """The sample files, and next to each the blank template its unit fills in
    (`creditbus template`)."""
    from creditbus.devtools.sample import write_sample_file
    from creditbus.publish.template import default_file_name, write_template

    catalog = default_catalog()
    files = []
    for i, unit in enumerate(DEMO_UNITS):
        suffix = ".xlsx" if i % 2 == 0 else ".csv"
        path = write_sample_file(directory / f"{unit}{suffix}", unit, rows, seed + i)
        template = write_template(directory / default_file_name(catalog, unit), catalog, unit)
        print(f"  {path.name}: {rows} rows; blank template {template.name}")
        files.append((unit, path))
    return files
