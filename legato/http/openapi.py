"""The API description says what the API answers: JSON objects from the native API, and its
errors as RFC 9457 problems (not FastAPI's own validation error shape, which it never sends).
The dialects keep their own error bodies: their errors are left undescribed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

__all__ = ["describe_problems"]

NATIVE = ("/api/v1/", "/healthz")
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details, with a stable machine-readable code.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM = {
    "description": "A problem (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def describe_problems(app: FastAPI) -> None:
    """Replace ``app.openapi`` by one that describes answers as they are."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _rewrite(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for path, operations in spec.get("paths", {}).items():
        native = path.startswith(NATIVE)
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if not native:
                continue
            for status, answer in responses.items():
                body = answer.get("content", {}).get("application/json")
                if status.startswith("2") and body is not None and not body.get("schema"):
                    body["schema"] = {"type": "object"}
            responses.setdefault("4XX", _PROBLEM)
            responses.setdefault("5XX", _PROBLEM)
    return spec
