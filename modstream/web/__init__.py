"""What the HTTP front doors share (``serve``, the review console, ``run --serve-port``).

site.bound_site     an aiohttp app on a port for as long as a block runs (port-in-use named)
responses           JSON bodies, the error shape, readiness and metrics responses
statuses            each error kind's HTTP status
secrets             the one length rule for API keys, reviewer tokens and the webhook secret
"""
