"""The verdict service's HTTP side (aiohttp): lookups for an ad server or a feed.

    GET  /v1/verdicts?post=URI | ?url=URL | ?sha256=HEX [&allow=full|standard|limited]
         200 the verdict, 404 {"status": "unknown"}; with allow: just {"allowed", "risk"}
    POST /v1/verdicts  {"subjects": [{"post": ...}, {"url": ...}, ...], "allow"?: ...}
         200 {"verdicts": [one answer per subject, in order, unknowns included]}
    GET  /healthz, /readyz (503 while the table loads, or stale), /metrics

A bad query (no subject or two, an unknown parameter, a subject that is empty, over 2 kB or not
UTF-8), a body that is not JSON, or more subjects than the batch cap is a 400 with a typed error
(``bad_request``, ``invalid_subject``, ``too_many_subjects``).
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import orjson
from aiohttp import web

from modstream.errors import BadRequest, InvalidSubject, TooManySubjects
from modstream.pipeline.moderate.brandsafety import (
    TAXONOMY,
    Inventory,
    allowances,
    allowed,
    tier_fields,
)
from modstream.verdicts.service import VerdictService
from modstream.verdicts.subjects import Subject, SubjectKind, subject_from
from modstream.verdicts.table import Verdict
from modstream.web.responses import (
    errors_as_json,
    json_response,
    metrics_response,
    readiness_response,
)

__all__ = ["build_app"]

MAX_BODY_BYTES = 4 * 1024 * 1024  # a batch's cap is counted in subjects; this bounds the bytes
_SUBJECTS = frozenset(kind.value for kind in SubjectKind)
_PARAMETERS = _SUBJECTS | {"allow"}


def build_app(service: VerdictService) -> web.Application:
    lookups = _Lookups(service)
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/v1/verdicts", lookups.one)
    app.router.add_post("/v1/verdicts", lookups.batch)
    app.router.add_get("/healthz", lookups.healthz)
    app.router.add_get("/readyz", lookups.readyz)
    app.router.add_get("/metrics", lookups.metrics)
    return app


def answer(subject: Subject, verdict: Verdict | None) -> dict[str, Any]:
    """A subject's verdict as a lookup returns it."""
    if verdict is None:
        return {"subject": subject.fields(), "status": "unknown"}
    return {
        "subject": subject.fields(),
        "status": "known",
        "taxonomy": TAXONOMY,
        "risk": verdict.risk.value,
        "categories": tier_fields(verdict.risk)["categories"],
        "nsfw": verdict.nsfw,
        "decided_by": verdict.decided_by,
        "images": verdict.images,
        "updated_at": verdict.updated_at,
        "allowed": allowances(verdict.risk),
    }


def short_answer(subject: Subject, verdict: Verdict | None, inventory: Inventory) -> dict[str, Any]:
    """The auction's hot path: may the ad run in ``inventory`` beside ``subject``?"""
    if verdict is None:
        return {"subject": subject.fields(), "status": "unknown"}
    return {"allowed": allowed(verdict.risk, inventory), "risk": verdict.risk.value}


class _Lookups:
    def __init__(self, service: VerdictService) -> None:
        self._service = service
        self._table = service.table
        metrics = service.metrics
        self._single = metrics.latency.labels("single")
        self._batched = metrics.latency.labels("batch")
        self._known = metrics.lookups.labels("known")
        self._unknown = metrics.lookups.labels("unknown")
        self._bad = metrics.lookups.labels("bad")

    async def one(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            subject, inventory = _query(request.rel_url.raw_query_string)
        except BadRequest:
            self._bad.inc()
            raise
        verdict = self._table.lookup(subject)
        (self._unknown if verdict is None else self._known).inc()
        if inventory is None:
            body = answer(subject, verdict)
        else:
            body = short_answer(subject, verdict, inventory)
        response = json_response(body, 404 if verdict is None else 200)
        self._single.observe(time.perf_counter() - started)
        return response

    async def batch(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            subjects, inventory = _batch(await request.read(), self._service.settings.max_batch)
        except BadRequest:
            self._bad.inc()
            raise
        answers = []
        for subject in subjects:
            verdict = self._table.lookup(subject)
            (self._unknown if verdict is None else self._known).inc()
            if inventory is None:
                answers.append(answer(subject, verdict))
            elif verdict is None:
                answers.append({"subject": subject.fields(), "status": "unknown"})
            else:
                answers.append({"subject": subject.fields(), "status": "known",
                                **short_answer(subject, verdict, inventory)})  # fmt: skip
        response = json_response({"verdicts": answers})
        self._batched.observe(time.perf_counter() - started)
        return response

    async def healthz(self, _request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        return readiness_response(self._service.not_ready())

    async def metrics(self, _request: web.Request) -> web.Response:
        return metrics_response(self._service.metrics.registry)


def _query(raw: str) -> tuple[Subject, Inventory | None]:
    """The subject and the inventory filter of a GET's query string, read strictly (percent
    escapes must be UTF-8)."""
    try:
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw),
                                       errors="strict", max_num_fields=8)  # fmt: skip
    except UnicodeDecodeError:
        raise InvalidSubject(
            "the query is not valid UTF-8 once its percent escapes are read"
        ) from None
    except ValueError as exc:
        raise BadRequest(f"the query cannot be read: {exc}") from None
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - _PARAMETERS)
    if unknown:
        raise BadRequest(
            f"unknown query parameter {', '.join(unknown)}: use one of post, url, sha256, "
            "and optionally allow"
        )
    if len(names) != len(set(names)):
        raise BadRequest("a query parameter is given twice")
    given = [(name, value) for name, value in pairs if name in _SUBJECTS]
    if len(given) != 1:
        raise BadRequest(f"name exactly one subject (post, url or sha256), got {len(given)}")
    values = dict(pairs)
    return Subject.of(*given[0]), _inventory(values.get("allow"))


def _batch(body: bytes, cap: int) -> tuple[list[Subject], Inventory | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("subjects"), list):
        raise BadRequest('the body must be {"subjects": [...]} with a list of subjects')
    unknown = sorted(set(data) - {"subjects", "allow"})
    if unknown:
        raise BadRequest(f"unknown field {', '.join(unknown)}: the body has subjects and allow")
    items = data["subjects"]
    if len(items) > cap:
        raise TooManySubjects(f"{len(items)} subjects in one batch, over the cap of {cap}")
    allow = data.get("allow")
    if allow is not None and not isinstance(allow, str):
        raise BadRequest("allow must be one of full, standard, limited")
    subjects = [subject_from(item, where=f"subject {i}") for i, item in enumerate(items)]
    return subjects, _inventory(allow)


def _inventory(value: str | None) -> Inventory | None:
    if value is None:
        return None
    try:
        return Inventory(value)
    except ValueError:
        raise BadRequest(
            f"allow={value!r} is not an inventory filter: use full, standard or limited"
        ) from None
