"""The one exception root of the bus, its few kinds, and the exit code of each.

Every error the bus raises on purpose is a `CreditbusError`. The command line
(creditbus/cli/main.py) catches the root once: it prints `error: <message>` on one line on stderr
and exits with the `exit_code` of the error's kind. The message is therefore written for the
operator: what is wrong and, where it helps, what to do; never a secret nor a clear identity
number. `EXIT_CODES` is the one table of exit codes (`creditbus --help`, docs/errors.md).

A class re-based onto a kind keeps its former standard-library base (`ValueError`, `KeyError`,
`RuntimeError`) as a second base, so code that catches that still does.
"""

from __future__ import annotations


class CreditbusError(Exception):
    """The root: an error the bus raises on purpose, with a message fit for the operator."""

    exit_code = 1


class ConfigError(CreditbusError):
    """The command line, a setting, the catalog, or a file the command was given (key, token,
    certificate, spreadsheet) cannot be used; nothing was done."""

    exit_code = 2


class BrokerUnavailable(CreditbusError):
    """No Kafka broker is configured, or it does not answer (or refuses what the command
    needs)."""

    exit_code = 3


class DatabaseError(CreditbusError):
    """The platform database cannot be reached, or its schema or roles are not ready."""

    exit_code = 4


class ContractError(CreditbusError):
    """An event, a message or a row does not satisfy the contract (it is rejected, with a
    reason code)."""


class DeliveryError(CreditbusError):
    """Output could not be delivered or confirmed in time (publisher, worker, sink)."""


INTERRUPTED = 130

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "done"),
    (1, "done with problems (rows rejected, a check failed, output unconfirmed), or any other "
        "error of the bus"),
    (ConfigError.exit_code, "the command line, a setting, the catalog or a given file cannot be "
                            "used; nothing was done"),
    (BrokerUnavailable.exit_code, "no Kafka broker configured, or it does not answer"),
    (DatabaseError.exit_code, "the platform database cannot be reached or is not migrated"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)
"""Exit codes of every `creditbus` command."""


def exit_codes_text() -> str:
    """The exit-code table as plain text (the epilog of `creditbus --help`)."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES)


def errors_markdown() -> str:
    """The text of docs/errors.md (a test keeps the two equal)."""
    lines = [
        "# Errors and exit codes", "",
        "Generated from `creditbus/errors.py`; do not edit by hand.", "",
        "Every `creditbus` command reports an error as one line on stderr, `error: <what is wrong"
        " and what to do>`, without a traceback, and exits with the code of the error's kind. "
        "Messages never show a secret or a clear identity number.", "",
        "| exit code | meaning |", "| --- | --- |",
    ]
    lines += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES]
    lines += ["", "| error kind (`creditbus.errors`) | exit code | when |", "| --- | --- | --- |"]
    for kind in (CreditbusError, ConfigError, BrokerUnavailable, DatabaseError, ContractError,
                 DeliveryError):
        doc = " ".join((kind.__doc__ or "").split())
        lines.append(f"| `{kind.__name__}` | {kind.exit_code} | {doc} |")
    return "\n".join(lines) + "\n"
