"""``modstream serve --bank-topic`` follows the shared banks as ``run`` does, on a real broker.

The bank topic gets an entry before ``serve`` starts (read to its end before the port answers)
and another while it runs (followed); HMA's lookup and ``/v1/hash`` see both.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import locations
import orjson
import pytest
from children import reap, spawn, terminate

from modstream.kafka.broker import free_loopback_port

from .conftest import Broker
from .test_bank_command import _bank

pytestmark = pytest.mark.asyncio(loop_scope="session")

A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"  # bridge.jpg's hash
B = "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d"


async def _get(url: str, **params: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as got:
        return got.status, orjson.loads(await got.read())


async def test_serve_follows_the_bank_topic(
    any_broker: Broker, tmp_path: Path, ov_cache_dir: Path
) -> None:
    topic = f"it-serve-banks-{uuid.uuid4().hex[:8]}"
    assert (await _bank(any_broker, "add", "known", A, "case-1", "--bank-topic", topic))[0] == 0
    port = free_loopback_port()
    log = tmp_path / "serve.log"
    server = spawn(
        [sys.executable, "-m", "modstream", "serve", "--port", str(port),
         "--cache-dir", str(ov_cache_dir), "--bank-topic", topic,
         "--bootstrap-servers", any_broker.bootstrap_servers],
        log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if (await _get(f"{url}/readyz"))[0] == 200:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        found = await _get(f"{url}/m/lookup", signal_type="pdq", signal=A)
        assert found == (200, {"known": [{"bank_content_id": "case-1", "distance": "0"}]})
        assert await _get(f"{url}/m/lookup", signal_type="pdq", signal=B) == (200, {})
        added = time.monotonic()
        assert (await _bank(any_broker, "add", "later", B, "case-2", "--bank-topic", topic))[0] == 0
        while (answer := await _get(f"{url}/m/lookup", signal_type="pdq", signal=B))[1] == {}:
            assert time.monotonic() - added < 15, "the new entry never reached serve"
            await asyncio.sleep(0.1)
        print(f"\na bank entry reached serve {time.monotonic() - added:.2f} s after it was added")
        assert answer == (200, {"later": [{"bank_content_id": "case-2", "distance": "0"}]})
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/v1/hash", data=(locations.PDQ / "bridge.jpg").read_bytes()) as got,
        ):
            hashed = orjson.loads(await got.read())
        assert hashed["pdq"] == A
        assert hashed["match"] == {"bank": "known", "id": "case-1", "distance": 0,
                                   "quality": 100, "action": "match"}  # fmt: skip
        assert await terminate(server) == 0, log.read_text()[-3000:]
    finally:
        reap(server)
