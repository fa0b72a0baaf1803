"""``modstream serve``: score single images over HTTP (see :mod:`modstream.serve`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_allow_cidr,
    add_bank_options,
    add_scorer_options,
    bank_settings,
    configure_logging,
    fetch_config,
    policy_from,
    scorer_config,
)
from modstream.errors import ConfigError, ModstreamError

if TYPE_CHECKING:
    from modstream.pipeline.score.scorer import ScorerConfig
    from modstream.serve.app import ServeConfig


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
    parser.add_argument(
        "--cache-entries", type=int, default=100_000, help="results kept by url and sha256"
    )
    parser.add_argument("--cache-ttl", type=float, default=3600.0, help="seconds a result is kept")
    add_scorer_options(parser)
    add_bank_options(parser)
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
    import asyncio

    from modstream.pipeline.moderate.cache import CacheConfig
    from modstream.pipeline.moderate.step import ModerationSettings
    from modstream.process import stop_on_signals
    from modstream.serve.server import ApiListen, ServerSettings, serve

    configure_logging()
    try:
        policy = policy_from(args)
        scorer = scorer_config(args, policy)
        settings = ServerSettings(
            listen=ApiListen(
                host=args.host, port=args.port, config=api_config(args.api_key_file, scorer)
            ),
            moderation=ModerationSettings(
                scorer=scorer, policy=policy, fetch=fetch_config(args, scorer),
                cache=CacheConfig(max_entries=args.cache_entries, ttl_s=args.cache_ttl),
                banks=bank_settings(args), bank_reload_s=args.bank_reload,
            ),
        )  # fmt: skip
    except (ConfigError, ValueError) as exc:
        print(f"modstream serve: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)  # SIGTERM and SIGINT stop the server gracefully
        await serve(settings, stop)

    try:
        asyncio.run(main())
    except ModstreamError as exc:
        print(f"modstream serve: {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
