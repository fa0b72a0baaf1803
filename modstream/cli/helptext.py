"""``--help`` as plain text: docstrings' reStructuredText markup removed, and every default shown.

Commands take their descriptions from module docstrings, written for the API docs (````modstream
serve````, ``:mod:`modstream.serve```); :func:`plain_text` turns that into what a terminal should
show. :class:`PlainHelpFormatter` adds ``(default: X)`` to an option whose help does not already
name its default, so no flag hides what it does when left out.
"""

from __future__ import annotations

import argparse
import copy
import re
from typing import Any

__all__ = ["PlainHelpFormatter", "PlainTextParser", "plain_text"]

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`([^`]*)`")  # :mod:`x`, :py:func:`x`
_LITERAL = re.compile(r"``([^`]+)``")


def _role_text(match: re.Match[str]) -> str:
    text = match.group(1).strip()
    titled = re.fullmatch(r"(.*?)\s*<[^>]*>", text)
    if titled:  # :func:`the loop <modstream.kafka.consume>` reads "the loop"
        return titled.group(1)
    if text.startswith("~"):  # :func:`~a.b.c` reads "c"
        return text[1:].rsplit(".", 1)[-1]
    return text


def plain_text(text: str) -> str:
    """``text`` with inline reStructuredText roles and literals reduced to their words."""
    return _LITERAL.sub(r"\1", _ROLE.sub(_role_text, text))


class PlainHelpFormatter(argparse.HelpFormatter):
    """Shows each option's default unless its help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        default = action.default
        spelled = {str(default)}
        if isinstance(default, float):
            spelled.add(f"{default:g}")  # 300.0 is written (300)
        shown = "default" in help_text.lower() or any(text in help_text for text in spelled)
        if not _has_default(action) or shown:
            return help_text
        return f"{help_text} (default: %(default)s)".strip()

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and _has_default(action):
            action = copy.copy(action)  # a flag without help still says its default
            action.help = ""
            action.help = self._get_help_string(action)
        return super()._format_action(action)


def _has_default(action: argparse.Action) -> bool:
    """A flag whose default is worth saying: not unset, off, suppressed or an empty list."""
    default = action.default
    if not action.option_strings or default is None or default is argparse.SUPPRESS:
        return False
    return default is not False and default != []


class PlainTextParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help is plain text with defaults shown (sub-commands too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", PlainHelpFormatter)
        super().__init__(*args, **kwargs)

    def format_help(self) -> str:
        return plain_text(super().format_help())

    def format_usage(self) -> str:
        return plain_text(super().format_usage())
