"""`creditbus keys generate --out DIR`: a new field-protection key pair (X25519, PEM)."""

from __future__ import annotations

import argparse
from pathlib import Path

from creditbus.errors import ConfigError
from creditbus.security.keys import generate_key_files


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys", help="field protection: generate the bus's key pair (X25519)"
    )
    actions = parser.add_subparsers(dest="keys_action", required=True)
    generate = actions.add_parser(
        "generate", help="write field-<id>.key.pem (private, 0600) and field-<id>.pub.pem"
    )
    generate.add_argument("--out", type=Path, required=True, help="directory for the two files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        files = generate_key_files(args.out)
    except OSError as exc:
        raise ConfigError(f"cannot write the key files in {args.out}: {exc.strerror}") from None
    print(f"key id:      {files.key_id}")
    print(f"private key: {files.private_path} (give it to the stream workers only: "
          "CREDITBUS_FIELD_PRIVATE_KEYS)")
    print(f"public key:  {files.public_path} (give it to the publishers: "
          "CREDITBUS_FIELD_PUBLIC_KEY)")
    return 0
