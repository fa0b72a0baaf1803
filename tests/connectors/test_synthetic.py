"""The synthetic firehose and the demo image server's distinct-bytes trick."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

from modstream.connectors.synthetic import SyntheticConfig, SyntheticFirehose
from modstream.demo.imageserver import sample_images, with_tag


async def test_firehose_makes_urls_unique_and_reposts_on_schedule() -> None:
    """Each event gets its own URL, except every third, which repeats the one before it."""
    config = SyntheticConfig(
        urls=("http://h/a.jpg", "http://h/b.png?x=1"), rate_per_s=1000.0, events=7,
        query_key="v", repost_every=3,
    )  # fmt: skip
    events = [event async for event in SyntheticFirehose(config).events()]
    urls = [event.url for event in events]
    assert urls == [
        "http://h/a.jpg?v=0", "http://h/b.png?x=1&v=1", "http://h/a.jpg?v=2", "http://h/a.jpg?v=2",
        "http://h/a.jpg?v=4", "http://h/b.png?x=1&v=5", "http://h/b.png?x=1&v=5",
    ]  # fmt: skip
    assert [event.id for event in events] == [f"synthetic-{n}" for n in range(7)]


def test_tagged_samples_have_new_bytes_and_the_same_pixels() -> None:
    """A JPEG comment or PNG text chunk changes the sha256, never the decoded picture."""
    samples = sample_images()
    assert {name.rsplit(".", 1)[1] for name in samples} == {"jpg", "png"}
    for name, body in samples.items():
        tagged = with_tag(body, b"42")
        assert hashlib.sha256(tagged).digest() != hashlib.sha256(body).digest(), name
        with Image.open(io.BytesIO(body)) as original, Image.open(io.BytesIO(tagged)) as copy:
            assert copy.format == original.format
            assert np.array_equal(np.asarray(original), np.asarray(copy)), name
