"""How ``modstream results`` prints a record it reads: known answers for the table's lines, the
records no event stands behind, and the count on stderr."""

from __future__ import annotations

import io

from modstream.cli.results import ResultPrinter, result_line


def test_a_result_is_printed_as_score_prints_an_input() -> None:
    """Score (4 decimals, 8 wide), the decision (18 wide) and the url."""
    record = {"id": "a", "url": "https://x/a.jpg", "nsfw": 0.98071, "decision": "flagged"}
    assert result_line(record) == "  0.9807  flagged            https://x/a.jpg"


def test_an_error_shows_its_kind_and_message() -> None:
    """An error record: ``error``, its kind, the url and the message in brackets."""
    record = {"id": "b", "url": "https://x/b", "error": {"kind": "not_an_image", "message": "HTML"}}
    assert result_line(record) == "   error  not_an_image       https://x/b  (HTML)"


def test_a_record_that_was_no_event_is_named_by_where_it_came_from() -> None:
    """An unreadable incoming record has no url or id: its topic, partition and offset stand in."""
    record = {"source_topic": "images.incoming", "partition": 2, "offset": 41,
              "error": {"kind": "malformed_record", "message": "not JSON"}}  # fmt: skip
    assert result_line(record) == ("   error  malformed_record   images.incoming[2]@41  (not JSON)")


def test_the_printer_counts_per_topic_and_passes_json_through() -> None:
    """``--json`` prints each value as it is; the summary counts what each topic gave."""
    out = io.StringIO()
    printer = ResultPrinter(out, as_json=True)
    printer.write("images.safe", b'{"id":"c","nsfw":0.01,"decision":"safe"}\n')
    printer.write("images.safe", b'{"id":"d","nsfw":0.02,"decision":"safe"}')
    assert out.getvalue() == (
        '{"id":"c","nsfw":0.01,"decision":"safe"}\n{"id":"d","nsfw":0.02,"decision":"safe"}\n'
    )
    topics = ["images.flagged", "images.safe"]
    assert printer.summary(topics) == "2 results: 0 on images.flagged, 2 on images.safe"
    assert ResultPrinter(out, as_json=False).summary(topics) == (
        "no results on images.flagged, images.safe"
    )


def test_a_value_that_is_not_json_is_one_line_not_a_crash() -> None:
    """A foreign record on a result topic is shown as such and reading goes on."""
    out = io.StringIO()
    ResultPrinter(out, as_json=False).write("images.review", b"\x00garbage")
    assert out.getvalue() == "       ?  not_json           images.review\n"
