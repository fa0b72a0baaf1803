"""``modstream run``: the streaming pipeline, as a scorer, a connector, or both in one process.

Scale out by starting many ``--role scorer`` processes with the same ``--group-id`` against one
Kafka cluster: Kafka splits the partitions of ``images.incoming`` among them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.cli.kafka_options import add_kafka_options, embedded_port, kafka_settings
from modstream.cli.options import (
    add_allow_cidr,
    add_allow_file_root,
    add_bank_options,
    add_cache_options,
    add_duration,
    add_scorer_options,
    bank_settings,
    configure_logging,
    fetch_config,
    flood_settings,
    policy_from,
    positive_float,
    positive_int,
    scorer_config,
)
from modstream.cli.runner import run_command, signalled
from modstream.cli.sources import source_requests
from modstream.connectors.registry import SOURCES, SourceSpec
from modstream.errors import ConfigError
from modstream.kafka.settings import Delivery
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.stream.config import (
    METRICS_PORT,
    PARTITIONS,
    REPLICATION_FACTOR,
    StreamConfig,
)
from modstream.pipeline.stream.topics import Topics

if TYPE_CHECKING:
    from modstream.pipeline.stream.service import PipelineSettings
    from modstream.process import ProcessPlan
    from modstream.serve.server import ApiListen

log = logging.getLogger("modstream")
STREAM = StreamConfig()  # the defaults of the stream's flags


EMBEDDED_HELP = (
    "without it the embedded development broker is started on 127.0.0.1 (in memory: its "
    "topics are lost when the command exits), and the log names the command that watches "
    "its results"
)


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    add_kafka_options(parser, without=EMBEDDED_HELP, embedded=True)
    group = parser.add_argument_group("pipeline")
    add_allow_cidr(group, "fetches")
    add_allow_file_root(group)
    group.add_argument(
        "--metrics-port", type=int, default=METRICS_PORT,
        help="Prometheus port; 0 turns it off (default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--metrics-host", default="127.0.0.1",
        help="address the metrics bind (default: %(default)s; 0.0.0.0 to be scraped from "
        "another host or container)",
    )  # fmt: skip
    group.add_argument("--group-id", default=STREAM.group_id,
                       help="consumer group (default: %(default)s)")  # fmt: skip
    group.add_argument(
        "--topic-prefix",
        default="images",
        help="topics are PREFIX.incoming, PREFIX.flagged, PREFIX.review, PREFIX.safe, "
        "PREFIX.errors (default: images)",
    )
    group.add_argument("--partitions", type=positive_int, default=PARTITIONS,
                       help="for created topics")  # fmt: skip
    group.add_argument("--replication-factor", type=positive_int, default=REPLICATION_FACTOR)
    group.add_argument("--max-in-flight", type=positive_int, default=STREAM.max_in_flight,
                       help="records being scored at once (default: %(default)s)")  # fmt: skip
    group.add_argument("--fetch-timeout", type=float, default=FetchConfig().total_timeout_s,
                       help="seconds per image (default: %(default)s)")  # fmt: skip
    add_cache_options(group, "scores")
    add_duration(
        group, "--fetch-max-wait", default=None,
        help="seconds a consumer fetch waits at most for records (default: 0.5; 0.02 on the "
        "embedded broker)",
    )  # fmt: skip
    add_duration(
        group, "--session-timeout", default=None,
        help="consumer group session timeout in seconds (default: 10; 2 on the embedded broker)",
    )  # fmt: skip
    group.add_argument(
        "--delivery", choices=[mode.value for mode in Delivery], default=STREAM.delivery.value,
        help="at-least-once: a replay after a crash may repeat a result (any broker); "
        "exactly-once: results and input offsets committed in one transaction per input "
        "partition, read_committed readers see each result once (Apache Kafka only; "
        "default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--transaction-interval", type=positive_float, metavar="S",
        default=STREAM.transaction_interval_s,
        help="exactly once: seconds between a partition's transaction commits; results wait "
        "for it (default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--transaction-timeout", type=positive_float, metavar="S",
        default=STREAM.transaction_timeout_s,
        help="exactly once: the broker aborts a transaction open this long and fences its "
        "producer, which then stops (Kafka's transaction.timeout.ms, at most the broker's "
        "transaction.max.timeout.ms; default: %(default)g)",
    )  # fmt: skip


def add_source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sources (connectors)")
    group.add_argument(
        "--source",
        action="append",
        metavar="NAME[:ARG]",
        help=f"connector to run, repeatable: {', '.join(sorted(SOURCES))} "
        "(backfill:PATH takes a directory, which the scorer in this process then reads, or a "
        "file of URLs)",
    )
    group.add_argument(
        "--source-option", action="append", default=[], metavar="[SOURCE.]KEY=VALUE",
        help="connector option, e.g. urls=http://...,rate=20 or jetstream.rewind-s=10; "
        "restart=true starts a source over, ignoring its saved position",
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
        help="API keys, one per line, each 16+ characters; without it no key is asked for",
    )  # fmt: skip


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="run the streaming pipeline", description=__doc__
    )
    parser.add_argument(
        "--role", choices=["all", "scorer", "connector"], default="all",
        help="scorer: consume and score images.incoming; connector: run the --source connectors "
        "into it; all: both in one process (default: %(default)s)",
    )  # fmt: skip
    add_source_options(parser)
    add_api_options(parser)
    add_pipeline_options(parser)
    add_scorer_options(parser)
    add_bank_options(parser)
    parser.add_argument(
        "--bank-topic", nargs="?", const=Topics().banks, default=None, metavar="TOPIC",
        help="also match against the shared banks of this compacted topic (default "
        "images.banks), read to its end at start and followed: what modstream bank and "
        "review --bank-decisions write",
    )  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    configure_logging()
    return run_command("run", lambda: _plan(args), _run)


def _plan(args: argparse.Namespace) -> ProcessPlan:
    from modstream.connectors.registry import make_source
    from modstream.process import ProcessPlan

    requests = source_requests(args)
    settings = pipeline_settings(args, file_root=_file_root(args, requests))
    sources = [make_source(spec, options) for spec, options in requests]
    if args.role == "connector" and not sources:
        raise ConfigError("--role connector needs --source")
    if args.role == "connector" and args.serve_port is not None:
        raise ConfigError("--serve-port needs a scorer (--role all or scorer)")
    return ProcessPlan(
        settings=settings, role=args.role, sources=sources, state_dir=args.state_dir,
        api=_api_listen(args, settings),
    )  # fmt: skip


async def _run(plan: ProcessPlan) -> None:
    from modstream.process import run_pipeline

    await run_pipeline(plan, signalled())


def _file_root(args: argparse.Namespace, requests: list[tuple[SourceSpec, Any]]) -> Path | None:
    """A folder backfill with the scorer in this process: the scorer reads exactly that folder."""
    from modstream.connectors.backfill import backfill_folders, scorer_file_root

    arguments = [spec.argument or "" for spec, _ in requests if spec.name == "backfill"]
    folders = backfill_folders(arguments)
    if args.role == "connector" and folders and args.allow_file_root is None:
        log.info("the scorer reads this backfill's file: URLs only when started with "
                 "--allow-file-root %s", folders[0].resolve())  # fmt: skip
    return scorer_file_root(
        folders, args.allow_file_root, scorer_in_process=args.role != "connector"
    )


def pipeline_settings(
    args: argparse.Namespace, *, file_root: Path | None = None
) -> PipelineSettings:
    from modstream.pipeline.moderate.cache import CacheConfig
    from modstream.pipeline.moderate.step import ModerationSettings
    from modstream.pipeline.stream.scoring import StreamConfig
    from modstream.pipeline.stream.service import PipelineSettings
    from modstream.pipeline.stream.topics import Topics

    policy = policy_from(args)
    scorer = scorer_config(args, policy)
    kafka = kafka_settings(args)
    delivery = Delivery(args.delivery)
    if delivery is Delivery.EXACTLY_ONCE and kafka is None:
        raise ConfigError(
            "--delivery exactly-once is unsupported: the embedded broker's transactions are "
            "incomplete; use Apache Kafka (--bootstrap-servers)"
        )
    return PipelineSettings(
        kafka=kafka,
        embedded_port=embedded_port(args),
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        moderation=ModerationSettings(
            scorer=scorer,
            policy=policy,
            fetch=fetch_config(args, scorer, file_root=file_root or args.allow_file_root),
            cache=CacheConfig(max_entries=args.cache_entries, ttl_s=args.cache_ttl),
            banks=bank_settings(args),
            live_banks=args.bank_topic is not None,
            bank_reload_s=args.bank_reload,
            flood=flood_settings(args),
        ),
        stream=StreamConfig(
            topics=Topics.with_prefix(args.topic_prefix),
            group_id=args.group_id,
            max_in_flight=args.max_in_flight,
            delivery=delivery,
            transaction_interval_s=args.transaction_interval,
            transaction_timeout_s=args.transaction_timeout,
        ),
        metrics_port=args.metrics_port or None,
        metrics_host=args.metrics_host,
        session_timeout_s=args.session_timeout_s,
        fetch_max_wait_s=args.fetch_max_wait_s,
        bank_topic=args.bank_topic,
    )


def _api_listen(args: argparse.Namespace, settings: PipelineSettings) -> ApiListen | None:
    if args.serve_port is None:
        return None
    from modstream.cli.serve import api_config
    from modstream.serve.server import ApiListen

    return ApiListen(
        host=args.serve_host, port=args.serve_port, port_flag="--serve-port",
        config=api_config(args.api_key_file, settings.moderation.scorer),
    )  # fmt: skip
