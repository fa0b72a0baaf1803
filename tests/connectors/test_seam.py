"""The connector seam's pure parts: positions, backoff, typed options, routing, checkpoints."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from modstream.backoff import Backoff, BackoffPolicy
from modstream.cli.sources import source_requests
from modstream.connectors.checkpoints import DirectoryCheckpoints
from modstream.connectors.options import parse_options
from modstream.connectors.positions import PositionTracker
from modstream.errors import ConfigError


def test_a_position_is_durable_only_when_it_and_every_earlier_emission_are_acknowledged() -> None:
    """Acks out of order never make a later position durable before an earlier event is stored."""
    tracker = PositionTracker()
    first = tracker.open(2, "10")
    second = tracker.open(1, "20")
    empty = tracker.open(0, "25")
    assert tracker.acknowledge(second) == []
    assert tracker.durable is None
    assert tracker.acknowledge(first) == []
    assert tracker.durable is None  # one event of the first emission is still out
    completed = tracker.acknowledge(first)
    assert [c.sequence for c in completed] == [first, second, empty]
    assert tracker.durable == "25"
    assert tracker.pending_emissions == tracker.pending_events == 0


def test_an_emission_without_a_position_leaves_the_durable_position_alone() -> None:
    """Receipt-only emissions (a webhook request) complete without moving the checkpoint."""
    tracker = PositionTracker()
    tracker.acknowledge(tracker.open(1, "5"))
    tracker.acknowledge(tracker.open(1, None))
    assert tracker.durable == "5"
    with pytest.raises(ValueError, match="no unacknowledged event"):
        tracker.acknowledge(tracker.open(0, None))


def test_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    """Delays grow geometrically, stay within [d*(1-jitter), d], cap at max_s and reset."""
    backoff = Backoff(BackoffPolicy(initial_s=1.0, max_s=5.0, jitter=0.5), uniform=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 2.5, 2.5]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    assert Backoff(BackoffPolicy(initial_s=1.0, jitter=0.5), uniform=lambda: 0.0).next_delay() == 1


@dataclass(frozen=True, kw_only=True, slots=True)
class _Options:
    url: str = "ws://x"
    rewind_s: float = 5.0
    thumbnails: bool = False
    tags: tuple[str, ...] = ()
    root: Path | None = None
    limit: int = 40


def test_options_are_cast_to_their_declared_types() -> None:
    """Text becomes float, bool, tuple, Path and int; dashes and underscores are one key."""
    parsed = parse_options(
        _Options,
        {"rewind-s": "2.5", "thumbnails": "yes", "tags": "a, b,,c", "root": "/srv", "limit": "7"},
        source="demo",
    )
    assert parsed == _Options(
        rewind_s=2.5, thumbnails=True, tags=("a", "b", "c"), root=Path("/srv"), limit=7
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nope": "1"}, r"unknown option 'nope' for source demo; valid: url, rewind-s"),
        ({"limit": "many"}, r"bad value for demo option limit='many'"),
        ({"thumbnails": "maybe"}, r"expected true or false"),
    ],
)
def test_unknown_or_malformed_options_name_the_option(values: dict[str, str], message: str) -> None:
    """A usage error names the option and, for an unknown one, the valid ones."""
    with pytest.raises(ConfigError, match=message):
        parse_options(_Options, values, source="demo")


def _args(**given: object) -> argparse.Namespace:
    defaults: dict[str, object] = {"source": [], "source_option": []}
    return argparse.Namespace(**{**defaults, **given})


def _declared(name: str) -> list[str]:
    return {"jetstream": ["url", "rewind_s"], "webhook": ["host", "port"]}[name]


def test_options_reach_the_sources_that_declare_them() -> None:
    """Flags map to one source's options, NAME.KEY scopes, a bare key goes to its declarers."""
    args = _args(
        source=["jetstream", "webhook"],
        source_option=["rewind-s=9", "webhook.port=1234"],
        jetstream_url="ws://127.0.0.1:1/subscribe",
    )
    requests = source_requests(args, declared=_declared)
    assert [(str(spec), options) for spec, options in requests] == [
        ("jetstream", {"url": "ws://127.0.0.1:1/subscribe", "rewind-s": "9"}),
        ("webhook", {"port": "1234"}),
    ]


def test_options_for_sources_that_are_not_running_are_usage_errors() -> None:
    """A flag of another source, an option nobody declares, or a bad spec is refused by name."""
    with pytest.raises(ConfigError, match="--webhook-port is an option of --source webhook"):
        source_requests(_args(source=["jetstream"], webhook_port=1), declared=_declared)
    with pytest.raises(ConfigError, match="no running source has an option 'colour'"):
        source_requests(
            _args(source=["jetstream", "webhook"], source_option=["colour=red"]),
            declared=_declared,
        )
    with pytest.raises(ConfigError, match="unknown source 'gopher'"):
        source_requests(_args(source=["gopher"]), declared=_declared)
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        source_requests(_args(source=["webhook"], source_option=["port"]), declared=_declared)


def test_checkpoints_round_trip_atomically_under_safe_names(tmp_path: Path) -> None:
    """A saved position loads back; keys become file names without separators; no temp is left."""
    store = DirectoryCheckpoints(tmp_path / "state")
    key = "jetstream-wss://host/subscribe"
    assert store.load(key) is None
    store.save(key, "1700000000000000")
    store.save(key, "1700000000000001")
    assert store.load(key) == "1700000000000001"
    assert [p.name for p in (tmp_path / "state").iterdir()] == [
        "jetstream-wss_host_subscribe.checkpoint.json"
    ]
