"""The HTTP API (``modstream serve``): the moderation step behind aiohttp routes.

``app.py`` routes and reads requests, ``statuses.py`` maps error kinds to HTTP statuses,
``openapi.py`` describes it all, ``server.py`` runs it with a scorer and a fetcher.
"""

from modstream.serve.app import ServeConfig, build_app

__all__ = ["ServeConfig", "build_app"]
