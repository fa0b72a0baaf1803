"""Command-line options shared by the commands, translated to config.

Defining the options imports nothing heavy: OpenVINO, PIL and aiohttp load only once a command
actually runs, so ``--help`` and usage errors answer at once and start-up stays short.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.kafka.logs import limit_repeats
from modstream.pipeline.match.flood import DEFAULT_LIMIT as DEFAULT_FLOOD_LIMIT
from modstream.pipeline.match.flood import DEFAULT_WINDOW_S as DEFAULT_FLOOD_WINDOW_S
from modstream.pipeline.moderate.policy import DEFAULT_POLICY, PRESETS, Policy

if TYPE_CHECKING:
    from modstream.models.pdq import PdqHashing
    from modstream.pipeline.fetch.config import FetchConfig
    from modstream.pipeline.match.banks import BankSettings
    from modstream.pipeline.match.flood import FloodSettings
    from modstream.pipeline.score.scorer import ScorerConfig

# Every command's exit status: done, failed (one line on stderr says why), a usage error.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

PREPROCESSING_MODES = ("exact", "fast")  # modstream.models.preprocess.Preprocessing

MB = 1024 * 1024


def add_allow_cidr(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """``--allow-cidr``: let ``what`` (fetches, URLs) reach an otherwise refused address range."""
    parser.add_argument(
        "--allow-cidr", action="append", default=[], metavar="CIDR",
        help=f"let {what} reach this otherwise refused address range (repeatable), "
        "e.g. 127.0.0.0/8",
    )  # fmt: skip


def add_allow_file_root(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--allow-file-root``: let ``file:`` URLs (a backfill's) be read, only below DIR."""
    parser.add_argument(
        "--allow-file-root", type=Path, default=None, metavar="DIR",
        help="let file: URLs (from a backfill) be read, only below DIR; off by default",
    )  # fmt: skip


def field_default(config: type, name: str) -> Any:
    """The default a config dataclass gives ``name``: where a flag's default comes from, for a
    config that cannot be built without values the flags supply (a cluster, a DID)."""
    for item in dataclasses.fields(config):
        if item.name == name:
            if item.default is not dataclasses.MISSING:
                return item.default
            if item.default_factory is not dataclasses.MISSING:
                return item.default_factory()
    raise ValueError(f"{config.__name__}.{name} has no default")


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines on stderr with time, level and logger, as every long-running command does; the
    Kafka client's repeated lines rate-limited (:mod:`modstream.kafka.logs`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    limit_repeats(handler)
    logging.basicConfig(level=level, handlers=[handler])


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of 0 or more")
    return value


class _DeprecatedMilliseconds(argparse.Action):
    """``--NAME-ms N``: a duration's old spelling, in milliseconds. Still taken, as seconds, with
    one line saying what to write instead."""

    def __init__(self, option_strings: list[str], dest: str, *, seconds_flag: str,
                 **kwargs: object) -> None:  # fmt: skip
        super().__init__(option_strings, dest, **kwargs)  # type: ignore[arg-type]
        self.seconds_flag = seconds_flag

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        seconds = float(str(values)) / 1000
        print(f"modstream: {option_string} is deprecated: use {self.seconds_flag} {seconds:g} "
              "(durations are in seconds)", file=sys.stderr)  # fmt: skip
        setattr(namespace, self.dest, seconds)


def add_duration(
    group: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    *,
    default: float | None,
    help: str,
    zero: bool = False,
) -> None:
    """``--FLAG S`` in seconds (into ``args.FLAG_s``), and the old ``--FLAG-ms`` spelling, still
    taken with a deprecation line. ``zero``: 0 is a valid duration."""
    dest = flag.lstrip("-").replace("-", "_") + "_s"
    kind = non_negative_float if zero else positive_float
    group.add_argument(flag, type=kind, default=default, dest=dest, metavar="S", help=help)
    group.add_argument(f"{flag}-ms", type=kind, dest=dest, action=_DeprecatedMilliseconds,
                       seconds_flag=flag, help=argparse.SUPPRESS)  # fmt: skip


def add_scorer_options(parser: argparse.ArgumentParser) -> None:
    """The scorer's flags; every default is the config's own (ScorerConfig and its parts)."""
    from modstream.models.device_spec import DeviceSpec
    from modstream.pipeline.score.config import ScorerConfig

    config, device = ScorerConfig(cache_dir=None), DeviceSpec()

    group = parser.add_argument_group("scoring")
    group.add_argument(
        "--device",
        action="append",
        metavar="D",
        help="OpenVINO device for a worker; repeat for several (CPU, GPU.1, NPU, AUTO:GPU,CPU, "
        "MYRIAD on OpenVINO 2022.3). Default: CPU",
    )
    group.add_argument(
        "--decode",
        choices=PREPROCESSING_MODES,
        default="fast",
        help="preprocessing: 'exact' reproduces the reference, 'fast' uses DCT-domain JPEG "
        "downscaling (default: fast)",
    )
    group.add_argument("--batch-size", type=positive_int, default=config.batch.max_batch_size,
                       help="max images per batch (default: %(default)s)")  # fmt: skip
    add_duration(
        group, "--max-delay", default=config.batch.max_delay_s, zero=True,
        help="seconds the oldest queued image waits at most for a fuller batch "
        "(default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--precision",
        default=device.precision,
        help="inference precision hint where the device supports it: f32, bf16, f16 "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--screen-precision",
        default=config.screen_precision,
        help="precision of fast mode's screening pass (default %(default)s; scores from "
        "--confirm-at up are confirmed at --precision with the exact crop)",
    )
    group.add_argument(
        "--confirm-at",
        type=float,
        default=config.confirm_at,
        help="fast mode rescores exactly every screen score at or above this (default "
        "%(default)s; 0 rescores everything, 1 trusts the screen)",
    )
    group.add_argument(
        "--confirm",
        choices=["scores", "decisions"],
        default="scores",
        help="fast mode with a bf16 screen: 'scores' (default) rescores every screen score from "
        "--confirm-at up at --precision; 'decisions' rescores those on the exact crop at bf16 "
        "and at --precision only within 0.05 of a policy threshold, so every decision is the "
        "reference's but scores away from the thresholds may differ from it by up to about 0.03",
    )
    group.add_argument(
        "--screening",
        choices=["auto", "always", "adaptive"],
        default=config.screening,
        help="fast mode: 'auto' (default) screens only where the device runs the screen "
        "precision (bf16), decided at start-up, and otherwise scores every image on the exact "
        "path; 'always' screens every image; 'adaptive' chooses per image from measured costs "
        "(faster on mostly-safe content without bf16; copies of one image may then differ below "
        "the confirmation floor)",
    )
    group.add_argument(
        "--performance-hint",
        choices=["LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"],
        default=device.performance_hint,
        help="OpenVINO performance hint (default: LATENCY; see docs/benchmarks.md)",
    )
    group.add_argument(
        "--max-image-mb", type=positive_float, default=config.limits.max_bytes / MB,
        help="largest encoded image accepted",
    )  # fmt: skip
    group.add_argument(
        "--max-megapixels", type=positive_float, default=config.limits.max_pixels / 1e6,
        help="largest decoded image accepted",
    )  # fmt: skip
    group.add_argument(
        "--pdq", choices=["auto", "on", "off"], default="auto",
        help="PDQ hashes (from every pixel, as the reference computes them: a hashed JPEG is "
        "decoded whole): auto, when a hash bank is loaded or followed; on, every result carries "
        "its pdq (for review --bank-decisions, or your own exports); off, results carry pdq: "
        "null and no bank can match (default: auto)",
    )  # fmt: skip
    group.add_argument(
        "--no-pdq", dest="pdq", action="store_const", const="off", help="the same as --pdq off"
    )
    group.add_argument(
        "--max-frames", type=positive_int, default=config.limits.video.max_frames,
        help="frames scored at most per animation or video (default %(default)s; the worst one "
        "decides)",
    )  # fmt: skip
    group.add_argument(
        "--max-video-s", type=positive_float, default=config.limits.video.max_duration_s,
        help="longest video accepted, in seconds (default %(default)g; longer is too_long)",
    )  # fmt: skip
    group.add_argument(
        "--decode-workers",
        type=positive_int,
        default=None,
        help="decode threads (default: cores + 1)",
    )
    group.add_argument("--cache-dir", type=Path, default=None, help="OpenVINO model cache")
    group.add_argument("--no-cache", action="store_true", help="disable the model cache")
    group.add_argument(
        "--policy",
        default=DEFAULT_POLICY,
        help=f"preset ({', '.join(PRESETS)}), 'flag=0.7,review=0.3', or a policy JSON file "
        f"(default: {DEFAULT_POLICY})",
    )
    group.add_argument(
        "--review-at",
        type=float,
        default=None,
        help="scores from here to the flag threshold go to review",
    )


def scorer_config(args: argparse.Namespace, policy: Policy | None = None) -> ScorerConfig:
    """The scorer's settings from the flags; with a ``policy``, fast mode confirms every screen
    score close enough to one of its thresholds (:meth:`Policy.confirmation_floor`)."""
    from modstream.models.animation import AnimationLimits
    from modstream.models.decode import DecodeLimits, VideoLimits
    from modstream.models.device_spec import DeviceSpec, default_cache_dir
    from modstream.models.preprocess import Preprocessing
    from modstream.pipeline.score.batcher import BatchPolicy
    from modstream.pipeline.score.scorer import ScorerConfig

    devices = tuple(
        DeviceSpec(name=name, performance_hint=args.performance_hint, precision=args.precision)
        for name in (args.device or ["CPU"])
    )
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    return ScorerConfig(
        devices=devices,
        preprocessing=Preprocessing(args.decode),
        limits=DecodeLimits(
            max_bytes=int(args.max_image_mb * MB),
            max_pixels=int(args.max_megapixels * 1e6),
            animation=AnimationLimits(max_scored_frames=args.max_frames),
            video=VideoLimits(max_frames=args.max_frames, max_duration_s=args.max_video_s),
        ),
        batch=BatchPolicy(max_batch_size=args.batch_size, max_delay_s=args.max_delay_s),
        cache_dir=cache_dir,
        screen_precision=args.screen_precision,
        confirm_at=args.confirm_at
        if policy is None
        else policy.confirmation_floor(args.confirm_at),
        screening=args.screening,
        pdq=pdq_hashing(args),
        decision_thresholds=policy.thresholds
        if policy is not None and args.confirm == "decisions"
        else (),
        **({"decode_workers": args.decode_workers} if args.decode_workers else {}),
    )


def pdq_hashing(args: argparse.Namespace) -> PdqHashing:
    """``--pdq``: auto hashes where a bank is loaded (``--hash-bank``, ``--hash-banks``) or
    followed (``--bank-topic``), so a process without banks spends nothing on hashing."""
    from modstream.models.pdq import PdqHashing

    wanted = getattr(args, "pdq", "auto")
    if wanted == "auto":
        banks = (getattr(args, "hash_bank", None) or getattr(args, "hash_banks", None)
                 or getattr(args, "bank_topic", None) is not None)  # fmt: skip
        wanted = "on" if banks else "off"
    return PdqHashing.PLAIN if wanted == "on" else PdqHashing.OFF


def add_cache_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """``--cache-entries`` and ``--cache-ttl``: ``what`` is reused by url and by sha256."""
    from modstream.pipeline.moderate.cache import CacheConfig

    cache = CacheConfig()
    parser.add_argument(
        "--cache-entries", type=int, default=cache.max_entries,
        help=f"{what} kept by url and sha256; 0: off (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--cache-ttl", type=float, default=cache.ttl_s,
        help=f"seconds one of the {what} is reused (default: %(default)s)",
    )  # fmt: skip


def add_bank_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("known-content matching (PDQ hash banks)")
    group.add_argument(
        "--hash-bank", action="append", default=[], metavar="NAME=PATH",
        help="a bank of known content: a file of PDQ hashes (64 hex each, optionally ', ID'); "
        "an image within distance 31 of one (quality >= 50) is decided 'matched'. Repeatable; "
        "reloaded when the file changes",
    )  # fmt: skip
    group.add_argument(
        "--hash-banks", type=Path, default=None, metavar="FILE.toml",
        help="banks with their settings: [banks.NAME] path, action (match | safe: known-good "
        "content that skips review), distance, min_quality, rotations",
    )  # fmt: skip
    group.add_argument(
        "--bank-reload", type=positive_float, default=2.0, metavar="S",
        help="seconds between checks of the bank files for changes (default 2)",
    )  # fmt: skip
    group.add_argument(
        "--flood-limit", type=int, default=DEFAULT_FLOOD_LIMIT, metavar="N",
        help="flood quarantine: a bank entry matching more than N distinct images (by sha256) "
        "within --flood-window is quarantined, its further matches go to review marked "
        "quarantined until modstream bank release (default %(default)s; 0: off)",
    )  # fmt: skip
    group.add_argument(
        "--flood-window", type=positive_float, default=DEFAULT_FLOOD_WINDOW_S, metavar="S",
        help="flood quarantine's sliding window, in seconds (default %(default)g)",
    )  # fmt: skip


def flood_settings(args: argparse.Namespace) -> FloodSettings:
    from modstream.pipeline.match.flood import FloodSettings

    return FloodSettings(limit=args.flood_limit, window_s=args.flood_window)


def bank_settings(args: argparse.Namespace) -> tuple[BankSettings, ...]:
    """``--hash-banks`` then ``--hash-bank``; a name given twice is a usage error."""
    from modstream.errors import InvalidBank
    from modstream.pipeline.match.banks import bank_from_flag, banks_from_toml

    banks = list(banks_from_toml(args.hash_banks)) if args.hash_banks else []
    banks += [bank_from_flag(value) for value in args.hash_bank]
    names = [bank.name for bank in banks]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidBank(f"bank {', '.join(twice)} is given more than once")
    return tuple(banks)


def policy_from(args: argparse.Namespace) -> Policy:
    """``--policy`` (a preset or a policy file), with ``--review-at`` moving its review band."""
    from modstream.pipeline.moderate.policy import resolve_policy

    policy = resolve_policy(args.policy)
    review_at = getattr(args, "review_at", None)
    return policy if review_at is None else policy.with_review(review_at)


def fetch_config(
    args: argparse.Namespace,
    scorer: ScorerConfig | None = None,
    *,
    file_root: Path | None = None,
) -> FetchConfig:
    """The guarded fetcher's settings: ``--allow-cidr``, ``--fetch-timeout`` where the command
    has it, and the scorer's body limit (an image larger than it could not be decoded anyway)."""
    from modstream.pipeline.fetch.addresses import parse_cidrs
    from modstream.pipeline.fetch.config import FetchConfig

    config = FetchConfig(allow_cidrs=parse_cidrs(args.allow_cidr), file_root=file_root)
    if scorer is not None:
        config = dataclasses.replace(config, max_bytes=scorer.limits.max_bytes)
    timeout = getattr(args, "fetch_timeout", None)
    if timeout is not None:
        config = dataclasses.replace(config, total_timeout_s=timeout)
    return config
