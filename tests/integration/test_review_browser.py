"""The review page in a real browser: Debian's Chromium driven by Selenium through chromedriver.

The page loads, takes a reviewer's token, shows the queued image blurred, reveals it on the space
key, and records "nsfw" on the n key; the decision arrives on the reviewed topic. Where Chromium or
its driver is not installed this says so and skips (CI installs them and makes the test count).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import driven_chromium

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker

from .support import OutputReader, produce
from .test_review import TOKENS, console, new_topics, record, until_pending

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def _wait(condition: Callable[[], Any], what: str, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what}")
        time.sleep(0.1)


def _judge_in_browser(url: str, shot: Path) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    seen: dict[str, Any] = {}
    with driven_chromium() as driver:
        driver.get(url)
        driver.find_element(By.ID, "token").send_keys(TOKENS["alice"])
        driver.find_element(By.CSS_SELECTOR, "#sign-in button").click()
        image = _wait(
            lambda: driver.execute_script(
                "const i = document.querySelector('.card.current img');"
                "return i && i.complete && i.naturalWidth > 0 ? i : null;"
            ),
            "the current card's image",
        )
        seen["blurred_class"] = "blurred" in image.get_attribute("class")
        seen["blurred_filter"] = driver.execute_script(
            "return getComputedStyle(arguments[0]).filter;", image
        )
        seen["counters"] = driver.find_element(By.ID, "counters").text
        driver.save_screenshot(str(shot))
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(" ")
        _wait(lambda: "blurred" not in image.get_attribute("class"), "the image revealed")
        seen["revealed_filter"] = _wait(  # after the short transition
            lambda: driver.execute_script(
                "const f = getComputedStyle(arguments[0]).filter; return f === 'none' ? f : null;",
                image,
            ),
            "the image unblurred",
        )
        body.send_keys("n")
        _wait(lambda: not driver.find_elements(By.CSS_SELECTOR, ".card"), "the card leave")
        seen["empty_text"] = driver.find_element(By.ID, "empty").text
    return seen


async def test_the_page_blurs_reveals_and_records_a_keyboard_decision(
    broker: EmbeddedBroker, image_server: ImageServer, tmp_path: Path
) -> None:
    """Blurred on arrival, revealed by space, judged by n: the decision is on the reviewed topic
    with the reviewer's name."""
    assert image_server.served is not None
    url = next(u for u in image_server.served.image_urls() if u.endswith(".jpg"))
    topics = new_topics()
    await produce(broker.bootstrap_servers, topics.review, [record(1, url, time.time())],
                  partitions=1)  # fmt: skip
    async with console(broker, topics) as c:
        await until_pending(c.service, 1)
        shot = tmp_path / "review.png"
        seen = await asyncio.to_thread(_judge_in_browser, c.url, shot)
        async with OutputReader(broker.bootstrap_servers, [topics.reviewed]) as reader:
            await reader.wait_until(lambda o: len(o) >= 1, timeout_s=20, what="the decision")
            (decision,) = reader.outputs
    assert seen["blurred_class"] and "blur(" in seen["blurred_filter"]
    assert seen["revealed_filter"] == "none"
    assert seen["counters"].startswith("1 left")
    assert "Nothing waits" in seen["empty_text"]
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert decision.record["id"] == "item-1" and decision.record["url"] == url
    assert (decision.record["label"], decision.record["reviewer"]) == ("nsfw", "alice")


def _counters_and_origins(url: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    seen: dict[str, Any] = {}
    with driven_chromium() as driver:
        driver.get(url)
        driver.find_element(By.ID, "token").send_keys(TOKENS["alice"])
        driver.find_element(By.CSS_SELECTOR, "#sign-in button").click()
        counters = driver.find_element(By.ID, "counters")
        seen["before"] = _wait(lambda: counters.text if "left" in counters.text else None,
                               "the counters")  # fmt: skip
        seen["origin"] = _wait(
            lambda: driver.execute_script(
                "const c = document.querySelector('.card[data-id=\"item-4\"]');"
                "return c ? [...c.querySelectorAll('.origin')].map((n) => n.textContent) : null;"
            ),
            "the webhook item's card",
        )
        first = driver.find_element(By.CSS_SELECTOR, ".card.current").get_attribute("data-id")
        driver.find_element(By.TAG_NAME, "body").send_keys("s")
        _wait(lambda: not driver.find_elements(By.CSS_SELECTOR, f'.card[data-id="{first}"]'),
              "the decided card leave")  # fmt: skip
        seen["after"] = _wait(lambda: counters.text if counters.text.startswith("3") else None,
                              "the counters after a decision", timeout_s=2)  # fmt: skip
    return seen


async def test_the_header_counts_down_at_once_and_webhook_cards_name_object_and_uploader(
    broker: EmbeddedBroker, image_server: ImageServer
) -> None:
    """With four items queued (so no refill follows a decision), the header says "3 left" right
    after one is judged, not the "4 left" of the last queue read; a webhook item's card names its
    object and its uploader."""
    assert image_server.served is not None
    url = next(u for u in image_server.served.image_urls() if u.endswith(".jpg"))
    topics = new_topics()
    now = time.time()
    webhook = {
        "source": "webhook",
        "meta": {"bucket": "uploads", "key": "u/42/cat.jpg",
                 "user_metadata": {"X-Amz-Meta-Uploader": "u42"}},
    }  # fmt: skip
    values = [record(n, url, now + n) for n in (1, 2, 3)] + [record(4, url, now + 4, **webhook)]
    await produce(broker.bootstrap_servers, topics.review, values, partitions=1)
    async with console(broker, topics) as c:
        await until_pending(c.service, 4)
        seen = await asyncio.to_thread(_counters_and_origins, c.url)
    assert seen["before"].startswith("4 left")
    assert seen["origin"] == ["object uploads/u/42/cat.jpg", "uploaded by u42"]
    assert seen["after"].startswith("3 left · 1 decided today (1 by you)")
