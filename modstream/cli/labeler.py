"""``modstream labeler``: the stream's and the reviewers' decisions as signed Bluesky labels.

    modstream labeler --labeler-did DID [--host H] [--port 8071] [--label-policy P] KAFKA...
    modstream labeler keygen
    modstream labeler declaration [--label-policy P] [--endpoint URL]

The signing key comes from ``MODSTREAM_LABELER_KEY`` (64 hex), never from a flag.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.options import EXIT_OK, EXIT_USAGE, configure_logging, field_default
from modstream.cli.runner import run_command, signalled
from modstream.errors import ConfigError
from modstream.labeler.config import LabelerSettings
from modstream.pipeline.stream.topics import Topics

if TYPE_CHECKING:
    from modstream.labeler.keys import SigningKey

KEY_VARIABLE = "MODSTREAM_LABELER_KEY"


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "labeler",
        help="publish the decisions about Bluesky posts as signed labels",
        description="A Bluesky labeler: consumes images.flagged, images.matched and "
        "images.reviewed in its own group, turns decisions about Bluesky posts into labels "
        "signed with the key in MODSTREAM_LABELER_KEY, stores each in the label topic before "
        "serving it, and serves com.atproto.label.subscribeLabels and queryLabels. keygen "
        "prints a new key and its did:key; declaration prints the app.bsky.labeler.service "
        "record for the policy's values.",
    )
    parser.add_argument("--labeler-did", default=None, help="the labeler account's DID (required)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8071, help="port to bind (default 8071)")
    _add_policy(parser)
    parser.add_argument(
        "--topic-prefix", default="images",
        help="the pipeline's --topic-prefix: decisions from PREFIX.flagged, PREFIX.matched and "
        "PREFIX.reviewed, labels stored in PREFIX.labels (default: images)",
    )  # fmt: skip
    parser.add_argument("--group-id", default=field_default(LabelerSettings, "group_id"),
                        help="consumer group (default: %(default)s)")  # fmt: skip
    add_kafka_options(parser, without="required to serve: the decisions come from a cluster")
    parser.set_defaults(handler=_serve, action=None)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    keygen = actions.add_parser("keygen", help="print a new signing key and its did:key")
    keygen.set_defaults(handler=_keygen)
    declaration = actions.add_parser(
        "declaration", help="print the app.bsky.labeler.service record for the policy's values"
    )
    _add_policy(declaration)
    declaration.add_argument(
        "--endpoint", default=None, metavar="URL",
        help="the labeler's public https URL: also print the DID document's service and "
        "verification method (the key from MODSTREAM_LABELER_KEY)",
    )  # fmt: skip
    declaration.set_defaults(handler=_declaration)


def _add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--label-policy", default="porn",
        help="porn (default: flagged -> porn), sexual, graded (flagged >= 0.9 -> porn, other "
        "flagged -> sexual), or a policy JSON file with a 'labels' object",
    )  # fmt: skip


def _policy(spec: str) -> Any:
    from pathlib import Path

    from modstream.labeler.policy import label_policy_from

    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the label policy ({exc})") from None
        if not isinstance(document, dict) or "labels" not in document:
            raise ConfigError(f'{path}: a policy file with a "labels" object is needed')
        return label_policy_from(document["labels"])
    return label_policy_from(spec)


def _key() -> Any:
    from modstream.labeler.keys import SigningKey

    text = os.environ.get(KEY_VARIABLE)
    if not text:
        raise ConfigError(
            f"{KEY_VARIABLE} is not set: create a key with 'modstream labeler keygen'"
        )
    return SigningKey.from_hex(text)


def _serve(args: argparse.Namespace) -> int:
    from modstream.labeler.server import serve_labeler

    configure_logging()

    async def main(settings: tuple[LabelerSettings, SigningKey]) -> None:
        service, key = settings
        await serve_labeler(service, key, host=args.host, port=args.port, stop=signalled())

    return run_command("labeler", lambda: _settings(args), main)


def _settings(args: argparse.Namespace) -> tuple[LabelerSettings, SigningKey]:
    if args.labeler_did is None:
        raise ConfigError("--labeler-did is required (the labeler account's DID)")
    kafka = kafka_settings(args)
    if kafka is None:
        raise ConfigError("--bootstrap-servers is required: the decisions come from a cluster")
    topics = Topics.with_prefix(args.topic_prefix)
    settings = LabelerSettings(
        kafka=kafka, labeler_did=args.labeler_did, group_id=args.group_id,
        result_topics=(topics.flagged, topics.matched), reviewed_topic=topics.reviewed,
        label_topic=topics.labels, policy=_policy(args.label_policy),
    )  # fmt: skip
    return settings, _key()


def _keygen(_args: argparse.Namespace) -> int:
    from modstream.labeler.keys import SigningKey

    key = SigningKey.generate()
    print(f"{KEY_VARIABLE}={key.private_hex}")
    print(f"did:key: {key.did_key}")
    return EXIT_OK


def _declaration(args: argparse.Namespace) -> int:
    from modstream.labeler.declaration import declaration, did_document

    try:
        policy = _policy(args.label_policy)
        document: dict[str, Any] = {"record": declaration(policy)}
        if args.endpoint is not None:
            document["did_document"] = did_document(_key(), args.endpoint)
    except (ConfigError, ValueError) as exc:
        print(f"modstream labeler: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(document, indent=2))
    return EXIT_OK
