"""``modstream run``: the streaming pipeline, as a scorer, a connector, or both in one process.

Scale out by starting many ``--role scorer`` processes with the same ``--group-id`` against one
Kafka cluster: Kafka splits the partitions of ``images.incoming`` among them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modstream.cli.kafka_options import add_kafka_options
from modstream.cli.options import (
    add_allow_cidr,
    add_allow_file_root,
    add_scorer_options,
    positive_int,
)
from modstream.connectors.registry import SOURCES


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    add_kafka_options(parser)
    group = parser.add_argument_group("pipeline")
    add_allow_cidr(group, "fetches")
    add_allow_file_root(group)
    group.add_argument(
        "--metrics-port", type=int, default=9108, help="Prometheus port; 0 turns it off"
    )
    group.add_argument("--group-id", default="modstream-scorers", help="consumer group")
    group.add_argument(
        "--topic-prefix",
        default="images",
        help="topics are PREFIX.incoming, PREFIX.flagged, PREFIX.review, PREFIX.safe, "
        "PREFIX.errors (default: images)",
    )
    group.add_argument("--partitions", type=positive_int, default=4, help="for created topics")
    group.add_argument("--replication-factor", type=positive_int, default=1)
    group.add_argument("--max-in-flight", type=positive_int, default=64)
    group.add_argument("--fetch-timeout", type=float, default=30.0, help="seconds per image")
    group.add_argument(
        "--cache-entries", type=int, default=100_000, help="scores cached by url and sha256; 0: off"
    )
    group.add_argument("--cache-ttl", type=float, default=3600.0, help="seconds a score is reused")
    group.add_argument(
        "--fetch-max-wait-ms",
        type=positive_int,
        default=None,
        help="longest a consumer fetch waits for records (default: 500; 20 on the embedded broker)",
    )
    group.add_argument(
        "--session-timeout-ms",
        type=positive_int,
        default=None,
        help="consumer group session timeout (default: 10000; 2000 on the embedded broker)",
    )


def add_source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sources (connectors)")
    group.add_argument(
        "--source",
        action="append",
        metavar="NAME[:ARG]",
        help=f"connector to run, repeatable: {', '.join(sorted(SOURCES))} "
        "(backfill:PATH takes a directory or a file of URLs)",
    )
    group.add_argument(
        "--source-option", action="append", default=[], metavar="[SOURCE.]KEY=VALUE",
        help="connector option, e.g. urls=http://...,rate=20 or jetstream.rewind-s=10",
    )  # fmt: skip
    group.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where connectors keep their positions (default: $MODSTREAM_STATE_DIR or "
        "~/.local/state/modstream)",
    )
    group.add_argument("--jetstream-url", default=None, help="Jetstream subscribe URL (ws/wss)")
    group.add_argument(
        "--bsky-image-base-url",
        default=None,
        help="Bluesky image CDN (default https://cdn.bsky.app)",
    )
    group.add_argument(
        "--mastodon-url", default=None, help="Mastodon instance (token: MASTODON_ACCESS_TOKEN)"
    )
    group.add_argument("--webhook-host", default=None, help="upload webhook host (127.0.0.1)")
    group.add_argument("--webhook-port", type=int, default=None, help="upload webhook port (8090)")
    group.add_argument(
        "--object-base-url",
        default=None,
        help="object store base URL for S3/MinIO events: images are BASE/BUCKET/KEY",
    )


def add_api_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("HTTP API in the scorer's process (as modstream serve)")
    group.add_argument(
        "--serve-port", type=int, default=None,
        help="serve /v1/score, /v1/hash, /readyz... on this port, sharing the stream's scorer and "
        "caches (off by default; 0: any port)",
    )  # fmt: skip
    group.add_argument("--serve-host", default="127.0.0.1", help="API address (127.0.0.1)")
    group.add_argument(
        "--api-key-file", type=Path, default=None, metavar="FILE",
        help="API keys, one per line; without it no key is asked for",
    )  # fmt: skip


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="run the streaming pipeline", description=__doc__
    )
    parser.add_argument("--role", choices=["all", "scorer", "connector"], default="all")
    add_source_options(parser)
    add_api_options(parser)
    add_pipeline_options(parser)
    add_scorer_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modstream.cli.running import run_command

    return run_command(args)
