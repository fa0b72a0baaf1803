"""The HTTP server each replica runs on: an aiohttp app on 127.0.0.1 (``host`` names another
address, e.g. ``0.0.0.0`` for containers to reach), a free port."""

from __future__ import annotations

from typing import Self

from aiohttp import web

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """Subclasses add their routes in :meth:`routes`; ``port`` is set once entered."""

    host = "127.0.0.1"
    port = 0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._runner.cleanup()
