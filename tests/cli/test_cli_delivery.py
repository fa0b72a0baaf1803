"""``modstream run --delivery``: exactly once is refused, before anything starts, where the
broker cannot keep it (the embedded development broker); the interval must be positive."""

from __future__ import annotations

import time

from clirun import modstream


async def test_exactly_once_on_the_embedded_broker_is_refused_before_it_runs() -> None:
    started = time.monotonic()
    done = await modstream("run", "--source", "synthetic", "--delivery", "exactly-once",
                           timeout_s=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "modstream run: --delivery exactly-once is unsupported: the embedded broker's "
        "transactions are incomplete; use Apache Kafka (--bootstrap-servers)\n"
    )
    assert time.monotonic() - started < 30  # no broker, model or source was started


async def test_the_transaction_interval_must_be_positive() -> None:
    done = await modstream("run", "--bootstrap-servers", "127.0.0.1:1", "--delivery",
                           "exactly-once", "--transaction-interval", "0")  # fmt: skip
    assert done.returncode == 2
    assert "--transaction-interval" in done.stderr
