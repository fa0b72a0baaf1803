"""``modstream labeler``: set-up helpers of the Bluesky labeler (``keygen``)."""

from __future__ import annotations

import argparse
from typing import Any

from modstream.cli.options import EXIT_OK


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "labeler",
        help="Bluesky labeler set-up: keygen",
        description="Set-up helpers of the Bluesky labeler. keygen prints a new secp256k1 "
        "signing key (keep it secret: give it to the labeler as MODSTREAM_LABELER_KEY, never "
        "as a flag) and its did:key, the #atproto_label verification method of the labeler's "
        "DID document.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    keygen = actions.add_parser("keygen", help="print a new signing key and its did:key")
    keygen.set_defaults(handler=_keygen)


def _keygen(_args: argparse.Namespace) -> int:
    from modstream.labeler.keys import SigningKey

    key = SigningKey.generate()
    print(f"MODSTREAM_LABELER_KEY={key.private_hex}")
    print(f"did:key: {key.did_key}")
    return EXIT_OK
