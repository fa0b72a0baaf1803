"""The OpenAPI document of ``modstream serve``, as a value: its routes, and the error kinds it
promises, generated from the one table of kinds."""

from __future__ import annotations

from modstream.serve.openapi import ERROR_KINDS, openapi_document
from modstream.web.statuses import kind_table


def test_the_kinds_it_lists_are_the_tables_that_a_request_can_meet() -> None:
    """Every kind an API request can meet, with its status and meaning from the table; none that
    only a stream or a stopping process reports."""
    rows = {row.kind: row for row in kind_table()}
    assert {kind: (rows[kind].status, rows[kind].meaning) for kind in ERROR_KINDS} == ERROR_KINDS
    assert {"blocked_path", "method_not_allowed", "not_found", "overloaded"} <= set(ERROR_KINDS)
    assert not {"malformed_record", "broker_unavailable", "record_too_large", "unknown_item",
                "source_error", "invalid_bank"} & set(ERROR_KINDS)  # fmt: skip


def test_each_status_of_a_route_names_its_kinds_and_the_error_schema_all_of_them() -> None:
    document = openapi_document(max_body_bytes=1024, keys_required=True)
    responses = document["paths"]["/v1/score"]["post"]["responses"]
    assert "blocked_path: " in responses["422"]["description"]
    assert responses["413"]["description"].startswith("too_large: ")
    enum = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    assert enum["kind"]["enum"] == sorted(ERROR_KINDS)
    assert (
        document["paths"]["/v1/score"]["post"]["requestBody"]["description"] == "at most 1024 bytes"
    )
