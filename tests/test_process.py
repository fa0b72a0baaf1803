"""Which failure a process reports when its stages stop together."""

from __future__ import annotations

import asyncio

import pytest

from modstream.errors import BrokerDenied
from modstream.process import first_failure, run_stages


def test_the_failure_is_reported_not_the_cancellations_it_caused() -> None:
    denied = BrokerDenied("denied")
    group = BaseExceptionGroup("stages", [asyncio.CancelledError(), denied, ValueError("later")])
    assert first_failure(group) is denied


def test_a_failure_inside_a_nested_group_is_found_past_a_group_of_cancellations() -> None:
    """A task group inside a stage: its cancellations come first, the failure in the next one."""
    failure = KeyError("missing")
    group = BaseExceptionGroup(
        "stages",
        [
            BaseExceptionGroup("inner", [asyncio.CancelledError()]),
            BaseExceptionGroup("other", [asyncio.CancelledError(), failure]),
        ],
    )
    assert first_failure(group) is failure


def test_only_cancellations_report_the_first_of_them() -> None:
    first = asyncio.CancelledError("first")
    group = BaseExceptionGroup("stages", [BaseExceptionGroup("inner", [first]),
                                          asyncio.CancelledError("second")])  # fmt: skip
    assert first_failure(group) is first


@pytest.mark.asyncio
async def test_a_failing_stage_stops_the_others_and_is_raised_alone() -> None:
    """run_stages: the stage that fails cancels the one still running, and its error is raised
    as itself (one line for the command), not as an exception group."""
    cancelled = asyncio.Event()

    async def waits() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise BrokerDenied("the broker denies writing to images.safe")

    with pytest.raises(BrokerDenied, match=r"images\.safe"):
        await run_stages({"waits": waits, "fails": fails})
    assert cancelled.is_set()
