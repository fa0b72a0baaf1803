"""One way to run a command: the same exits and the same one line for every sub-command.

    return run_command("serve", setup, main)

``setup()`` turns the flags into settings; a :class:`~modstream.errors.ConfigError` or a
``ValueError`` there is a usage error: ``modstream serve: message`` and exit 2, before anything
starts. ``main(settings)`` is a coroutine, run by ``asyncio.run``, returning the exit code (None:
0). A typed error it raises is one line, ``modstream serve: KIND: message``, and exit 1; any other
exception is one line too (``internal error: ...``), with its traceback in the debug log, never on
the terminal. A long-running command stops gracefully on SIGTERM or SIGINT with the event
:func:`signalled` returns.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from modstream.cli.options import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from modstream.errors import ConfigError, ModstreamError

__all__ = ["failed", "run_command", "signalled"]

log = logging.getLogger("modstream")
T = TypeVar("T")


def failed(command: str, error: Exception) -> int:
    """Say why ``command`` stopped, in one line on stderr; its exit status (1)."""
    if isinstance(error, ModstreamError):
        print(f"modstream {command}: {error.kind}: {error}", file=sys.stderr)
    else:  # a bug: still one line, with the traceback in the debug log
        log.debug("stopped by an unexpected error", exc_info=error)
        print(f"modstream {command}: internal error: {type(error).__name__}: {error}",
              file=sys.stderr)  # fmt: skip
    return EXIT_FAILED


def run_command(
    command: str,
    setup: Callable[[], T],
    main: Callable[[T], Coroutine[Any, Any, int | None]],
) -> int:
    try:
        settings = setup()
    except (ConfigError, ValueError) as exc:
        print(f"modstream {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        code = asyncio.run(main(settings))
    except Exception as exc:  # noqa: BLE001 - every failure gets its one line (see failed)
        return failed(command, exc)
    return EXIT_OK if code is None else code


def signalled() -> asyncio.Event:
    """An event SIGTERM and SIGINT set (a graceful stop); call it inside the running loop."""
    from modstream.process import stop_on_signals

    stop = asyncio.Event()
    stop_on_signals(stop)
    return stop
