"""``--source webhook``: object storage (S3, MinIO) or an uploader posts each new image.

Files: ``payloads.py`` (pure: request JSON -> image events, for our format, S3 and MinIO),
``auth.py`` (pure: bearer token or HMAC signature, compared in constant time), ``server.py``
(the aiohttp server and the :class:`WebhookSource` that yields what its requests carry).
"""

from __future__ import annotations

import os

from modstream.connectors.options import refuse_argument
from modstream.connectors.webhook.server import WebhookOptions, WebhookSource
from modstream.errors import ConfigError
from modstream.web.secrets import require_length

__all__ = ["OPTIONS", "SECRET_VARIABLE", "WebhookOptions", "WebhookSource", "create"]

SECRET_VARIABLE = "MODSTREAM_WEBHOOK_SECRET"

OPTIONS = WebhookOptions


def create(options: WebhookOptions, argument: str | None) -> WebhookSource:
    refuse_argument(
        "webhook", argument, instead="set the address with --webhook-host and --webhook-port"
    )
    secret = os.environ.get(SECRET_VARIABLE, "").strip()
    if not secret:
        raise ConfigError(
            f"the webhook source needs a shared secret: set {SECRET_VARIABLE} (callers send it "
            "as 'Authorization: Bearer <secret>' or sign the body with it)"
        )
    require_length(secret, SECRET_VARIABLE)
    return WebhookSource(options, secret=secret)
