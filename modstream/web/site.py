"""An aiohttp application bound to a port for as long as a block runs: every HTTP front door."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator

from aiohttp import web

from modstream.errors import PortInUse

__all__ = ["bound_site"]


@contextlib.asynccontextmanager
async def bound_site(
    app: web.Application, host: str, port: int, *, port_flag: str
) -> AsyncIterator[int]:
    """``app`` served on ``host:port`` for as long as the block runs; yields the bound port (what
    port 0 became). A port in use is a :class:`PortInUse` naming the flag that moves it."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                f"cannot listen on {host}:{port}: the port is in use; choose another with "
                f"{port_flag}"
            ) from None
        yield _port_of(site)
    finally:
        await runner.cleanup()


def _port_of(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the bound socket here; the port is what port 0 became
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0
