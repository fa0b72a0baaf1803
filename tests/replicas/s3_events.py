"""Bucket notifications as AWS S3 and MinIO write them, and a sender that posts them like MinIO.

Shapes (one record per request, as both stores send them):

- AWS S3: ``{"Records": [record]}``, ``eventSource: "aws:s3"``, ``eventName: "ObjectCreated:Put"``;
  the object key is form-encoded with ``/`` kept (``photos/red flower.jpg`` ->
  ``photos/red+flower.jpg``, UTF-8 as ``%XX``).
- MinIO: ``{"EventName", "Key": "<bucket>/<decoded key>", "Records": [record]}``,
  ``eventSource: "minio:s3"``, names prefixed with ``s3:``, the key encoded like Go's
  ``url.QueryEscape`` (``/`` becomes ``%2F``), plus ``contentType`` and ``userMetadata``.

:func:`deliver_like_minio` probes the endpoint with ``HEAD`` (any answer means "up") and then
POSTs the body with ``Authorization: Bearer <token>``, as MinIO's webhook target does.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import aiohttp
import orjson

__all__ = [
    "aws_key",
    "deliver_like_minio",
    "minio_key",
    "minio_notification",
    "s3_notification",
    "s3_record",
    "s3_test_event",
]

_sequencers = itertools.count(0x0055AED6DCD90281E5)


def aws_key(key: str) -> str:
    """The key as S3 writes it in a notification: form-encoded, ``/`` kept."""
    return quote_plus(key, safe="/")


def minio_key(key: str) -> str:
    """The key as MinIO writes it: Go's ``url.QueryEscape`` (``/`` is ``%2F`` too)."""
    return quote_plus(key, safe="")


def _etag(bucket: str, key: str) -> str:
    return hashlib.md5(f"{bucket}/{key}".encode(), usedforsecurity=False).hexdigest()


def s3_record(
    bucket: str,
    key: str,
    *,
    event_name: str = "ObjectCreated:Put",
    size: int = 48213,
    version_id: str | None = None,
    sequencer: str | None = None,
    event_time: str = "2024-05-01T12:00:00.000Z",
) -> dict[str, Any]:
    """One AWS S3 event record (eventVersion 2.1) for ``key`` (given decoded)."""
    obj: dict[str, Any] = {
        "key": aws_key(key),
        "size": size,
        "eTag": _etag(bucket, key),
        "sequencer": sequencer or f"{next(_sequencers):018X}",
    }
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": event_time,
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "modstream-uploads",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def s3_notification(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_test_event(bucket: str) -> dict[str, Any]:
    """What S3 sends once when a notification configuration is saved."""
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-05-01T11:59:00.000Z",
        "Bucket": bucket,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }


def minio_notification(
    bucket: str,
    key: str,
    *,
    event_name: str = "s3:ObjectCreated:Put",
    size: int = 48213,
    content_type: str = "image/jpeg",
    user_metadata: dict[str, str] | None = None,
    version_id: str | None = None,
    sequencer: str | None = None,
    event_time: str = "2024-05-01T12:00:00.123Z",
) -> dict[str, Any]:
    """MinIO's webhook body for one event on ``key`` (given decoded)."""
    obj: dict[str, Any] = {
        "key": minio_key(key),
        "size": size,
        "eTag": _etag(bucket, key),
        "contentType": content_type,
        "userMetadata": {"content-type": content_type, **(user_metadata or {})},
        "sequencer": sequencer or f"{next(_sequencers):016X}",
    }
    if version_id:  # omitempty
        obj["versionId"] = version_id
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": event_time,
        "eventName": event_name,
        "userIdentity": {"principalId": "minioadmin"},
        "requestParameters": {
            "principalId": "minioadmin",
            "region": "",
            "sourceIPAddress": "172.17.0.1",
        },
        "responseElements": {
            "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
            "x-amz-request-id": "17B3D2A1C0FFEE00",
            "x-minio-deployment-id": "0170a4cc-dca6-4e72-86f1-c0cc760dff7f",
            "x-minio-origin-endpoint": "http://172.17.0.2:9000",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "minioadmin"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
        "source": {"host": "172.17.0.1", "port": "", "userAgent": "MinIO (linux; amd64) mc/2024"},
    }
    decoded = unquote_plus(obj["key"])
    return {"EventName": event_name, "Key": f"{bucket}/{decoded}", "Records": [record]}


async def deliver_like_minio(
    session: aiohttp.ClientSession, endpoint: str, body: dict[str, Any], *, token: str
) -> tuple[int, dict[str, Any]]:
    """HEAD probe, then POST with a bearer token; the status and the JSON answer."""
    async with session.head(endpoint) as probe:
        await probe.read()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with session.post(endpoint, data=orjson.dumps(body), headers=headers) as response:
        return response.status, await response.json()
