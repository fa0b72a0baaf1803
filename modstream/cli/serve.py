"""``modstream serve``: score single images over HTTP (see :mod:`modstream.serve`)."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.options import (
    add_allow_cidr,
    add_bank_options,
    add_cache_options,
    add_scorer_options,
    bank_settings,
    configure_logging,
    fetch_config,
    flood_settings,
    policy_from,
    scorer_config,
)
from modstream.cli.runner import run_command, signalled
from modstream.errors import ConfigError

if TYPE_CHECKING:
    from modstream.kafka.settings import KafkaSettings
    from modstream.pipeline.moderate.moderator import Moderator
    from modstream.pipeline.score.scorer import ScorerConfig
    from modstream.serve.app import ServeConfig
    from modstream.serve.server import ServerSettings


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="score single images over HTTP",
        description="Score single images over HTTP: POST /v1/score (raw bytes, multipart or a "
        "JSON url), GET /v1/hash/SHA256, /healthz, /readyz, /metrics and /openapi.json. Errors "
        'are JSON: {"error": {"kind", "message"}}.',
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any)")
    parser.add_argument(
        "--api-key-file", type=Path, default=None, metavar="FILE",
        help="API keys, one per line, each 16+ characters; without it no key is asked for",
    )  # fmt: skip
    add_allow_cidr(parser, "URLs")
    parser.add_argument("--fetch-timeout", type=float, default=10.0, help="seconds per image URL")
    add_cache_options(parser, "results")
    add_scorer_options(parser)
    add_bank_options(parser)
    parser.add_argument(
        "--bank-topic", nargs="?", const="images.banks", default=None, metavar="TOPIC",
        help="also match against the shared banks of this compacted topic (default "
        "images.banks) on the cluster of --bootstrap-servers, read to its end before the "
        "first request is answered and followed, as run --bank-topic does",
    )  # fmt: skip
    add_kafka_options(parser, without="needed with --bank-topic only")
    parser.set_defaults(handler=run)


def api_config(key_file: Path | None, scorer: ScorerConfig) -> ServeConfig:
    """The API's limits follow the scorer's: its body limit, its latency budget per request."""
    from modstream.serve.app import ServeConfig

    return ServeConfig(
        max_body_bytes=scorer.limits.max_bytes,
        api_keys=_api_keys(key_file),
        request_budget_s=scorer.latency_budget_s,
    )


def _api_keys(path: Path | None) -> frozenset[str]:
    from modstream.web.secrets import read_api_keys

    return frozenset() if path is None else read_api_keys(path)


def run(args: argparse.Namespace) -> int:
    configure_logging()
    return run_command("serve", lambda: _settings(args), _serve)


@dataclass(frozen=True, slots=True)
class _Serving:
    server: ServerSettings
    kafka: KafkaSettings | None  # with bank_topic: the cluster whose bank topic is followed
    bank_topic: str | None


def _settings(args: argparse.Namespace) -> _Serving:
    from modstream.pipeline.moderate.cache import CacheConfig
    from modstream.pipeline.moderate.step import ModerationSettings
    from modstream.serve.server import ApiListen, ServerSettings

    kafka = kafka_settings(args)
    if args.bank_topic is not None and kafka is None:
        raise ConfigError("--bank-topic needs --bootstrap-servers: serve starts no broker")
    policy = policy_from(args)
    scorer = scorer_config(args, policy)
    server = ServerSettings(
        listen=ApiListen(host=args.host, port=args.port,
                         config=api_config(args.api_key_file, scorer)),
        moderation=ModerationSettings(
            scorer=scorer, policy=policy, fetch=fetch_config(args, scorer),
            cache=CacheConfig(max_entries=args.cache_entries, ttl_s=args.cache_ttl),
            banks=bank_settings(args), bank_reload_s=args.bank_reload,
            live_banks=args.bank_topic is not None, flood=flood_settings(args),
        ),
    )  # fmt: skip
    return _Serving(server, kafka, args.bank_topic)


async def _serve(serving: _Serving) -> None:
    from modstream.serve.server import serve

    alongside = None
    if serving.bank_topic is not None:
        from modstream.pipeline.stream.banks import following_banks

        kafka, topic = serving.kafka, serving.bank_topic
        assert kafka is not None

        def alongside(moderator: Moderator) -> contextlib.AbstractAsyncContextManager[object]:
            assert moderator.matcher is not None  # live_banks
            return following_banks(kafka, topic, moderator.matcher)

    # SIGTERM and SIGINT stop the server gracefully.
    await serve(serving.server, signalled(), alongside=alongside)
