"""The OpenAPI 3.1 description of ``modstream serve``, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from modstream.errors import (
    AlreadyDecided,
    ConfigError,
    InvalidSubject,
    MalformedRecord,
    RecordRefused,
    SourceError,
    TooManySubjects,
    UnknownItem,
)
from modstream.pipeline.moderate.brandsafety import ADULT, TAXONOMY, Risk
from modstream.web.statuses import kind_table

__all__ = ["ERROR_KINDS", "openapi_document"]

# Every kind a response can carry, with its status: the table of modstream.web.statuses (made
# from modstream.errors) less the kinds no request to this API can meet (a stream's records, the
# review console's items, the verdict lookups, what stops a process before it serves).
_ELSEWHERE = (MalformedRecord, UnknownItem, AlreadyDecided, SourceError, ConfigError, RecordRefused,
              InvalidSubject, TooManySubjects)  # fmt: skip
ERROR_KINDS: dict[str, tuple[int, str]] = {
    row.kind: (row.status, row.meaning)
    for row in kind_table()
    if row.error is None or not issubclass(row.error, _ELSEWHERE)
}

_MATCH = {
    "type": "object",
    "description": "the image's hash matched a bank (decision 'matched'; 'safe' for a safe bank)",
    "required": ["bank", "id", "distance", "quality", "action"],
    "properties": {
        "bank": {"type": "string"},
        "id": {"type": "string"},
        "distance": {"type": "integer", "minimum": 0, "maximum": 256},
        "quality": {"type": "integer", "minimum": 0, "maximum": 100},
        "action": {"enum": ["match", "safe"]},
        "variant": {"type": "string", "description": "the rotation or mirror that matched"},
    },
}
_HASH_PROPERTIES: dict[str, Any] = {
    "pdq": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
    "pdq_quality": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
    "match": _MATCH,
}
_HASHED = {
    "type": "object",
    "required": ["sha256", "width", "height", "pdq", "pdq_quality"],
    "properties": {
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        **_HASH_PROPERTIES,
    },
}
BRAND_SAFETY: dict[str, Any] = {
    "type": "object",
    "description": "the IAB brand-safety tier: open_nsfw rates Adult & Explicit Sexual Content "
    "only; no other category is claimed",
    "required": ["taxonomy", "risk", "categories"],
    "properties": {
        "taxonomy": {"const": TAXONOMY},
        "risk": {"enum": [risk.value for risk in Risk]},
        "categories": {
            "type": "array",
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "name", "suitability"],
                "properties": {
                    "id": {"const": ADULT["id"]},
                    "name": {"const": ADULT["name"]},
                    "suitability": {"enum": [r.suitability for r in Risk if r.suitability]},
                },
            },
        },
    },
}
_RESULT = {
    "type": "object",
    "required": [
        "nsfw",
        "decision",
        "policy",
        "brand_safety",
        "model",
        "sha256",
        "width",
        "height",
        "timings",
    ],
    "properties": {
        "nsfw": {"type": "number", "minimum": 0, "maximum": 1},
        "decision": {"enum": ["flagged", "review", "safe", "matched"]},
        "policy": {"type": "string"},
        "brand_safety": BRAND_SAFETY,
        "model": {"type": "string", "examples": ["open_nsfw@864bb37b"]},
        "device": {"type": "string"},
        "precision": {"type": "string"},
        "preprocessing": {"enum": ["exact", "fast"]},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "cached": {"type": "boolean"},
        "timings": {"type": "object", "description": "milliseconds per stage, and batch_size"},
        **_HASH_PROPERTIES,
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["kind", "message"],
            "properties": {"kind": {"enum": sorted(ERROR_KINDS)}, "message": {"type": "string"}},
        }
    },
}


_SHA256_PARAMETER = {
    "name": "sha256",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {
            "description": "; ".join(
                f"{kind}: {text}" for kind, (code, text) in ERROR_KINDS.items() if code == status
            ),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


def openapi_document(max_body_bytes: int, keys_required: bool) -> dict[str, Any]:
    result = {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}
    score: dict[str, Any] = {
        "summary": "Score one image: its bytes, a multipart 'image' field, or a URL to fetch",
        "requestBody": {
            "required": True,
            "description": f"at most {max_body_bytes} bytes",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "image/*": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"image": {"type": "string", "format": "binary"}},
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["url"],
                        "properties": {"url": {"type": "string", "format": "uri"}},
                    }
                },
            },
        },
        "responses": {
            "200": {"description": "the result", "content": result},
            **_errors(400, 401, 405, 413, 415, 422, 500, 502, 503, 504),
        },
    }
    plain = {"200": {"description": "JSON status"}}
    content = score["requestBody"]["content"]
    uploads = {kind: schema for kind, schema in content.items() if kind != "application/json"}
    hashed = {"application/json": {"schema": _HASHED}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "modstream", "version": "1"},
        "paths": {
            "/v1/score": {"post": score},
            "/v1/hash": {
                "post": {
                    "summary": "The PDQ hash of an uploaded image and its match in the hash "
                    "banks, without scoring it",
                    "requestBody": {"required": True, "content": uploads},
                    "responses": {
                        "200": {"description": "the hash and its match", "content": hashed},
                        **_errors(400, 401, 413, 415, 422),
                    },
                }
            },
            "/v1/hash/{sha256}": {
                "get": {
                    "summary": "A result already known for content with this sha256",
                    "parameters": [_SHA256_PARAMETER],
                    "responses": {
                        "200": {"description": "the cached result", "content": result},
                        **_errors(400, 401, 404),
                    },
                }
            },
            "/healthz": {"get": {"summary": "the process is up", "responses": plain}},
            "/readyz": {
                "get": {
                    "summary": "ready to score: the network is compiled (and, in a pipeline's "
                    "process, the consumer has joined its group and the broker answers)",
                    "responses": {
                        **plain,
                        "503": {"description": "not ready: {status: not_ready, reason}"},
                    },
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": plain}},
            "/m/lookup": {
                "get": _hma(
                    "Meta HMA's lookup: ?signal_type=pdq&signal=HEX, or ?url=URL; "
                    "{BANK: [{bank_content_id, distance}]}"
                ),
                "post": _hma(
                    "Meta HMA's lookup of one uploaded file (multipart field photo) or "
                    "?url=URL: {pdq: {BANK: [{bank_content_id, distance}]}}"
                ),
            },
            "/m/raw_lookup": {
                "get": _hma(
                    "Meta HMA's raw lookup: ?signal_type=pdq&signal=HEX"
                    "[&include_distance=true]: {matches: [...]}"
                )
            },
            "/h/hash": {
                "get": _hma("Meta HMA's hasher: ?url=URL: {pdq: HEX}"),
                "post": _hma(
                    "Meta HMA's hasher: one uploaded file (multipart field photo): {pdq: HEX}"
                ),
            },
        },
        "components": {"schemas": {"Result": _RESULT, "Error": _ERROR}},
    }
    if keys_required:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"key": []}]
    return document


def _hma(summary: str) -> dict[str, Any]:
    """An HMA-compatible route (modstream/serve/hma.py): HMA's shapes, its {message} errors."""
    return {
        "summary": summary,
        "responses": {
            "200": {"description": "HMA's response shape"},
            "400": {"description": "{message, kind}: a bad signal_type, signal or upload"},
            "401": {"description": "{message, kind}: an API key is required"},
            "413": {"description": "{message, kind}: the upload is too large"},
            "422": {"description": "{message, kind}: the image cannot be hashed"},
        },
    }
