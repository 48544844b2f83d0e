"""The error responses of the REST API, declared once: one model for every error body and what each status
code means, so every route's OpenAPI entry lists the codes it can answer with (`tests/test_api.py` checks
the declared codes against what fuzzed requests get)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorItem(BaseModel):
    model_config = ConfigDict(extra="allow")  # pydantic's own items carry `input` and `ctx` too

    loc: list[str | int] = Field(description="where: the key path under body, query or path")
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error body: a message, or (422, and 409 on submission) one item per bad key."""

    detail: str | list[ErrorItem]


MEANING = {
    401: "missing or unknown bearer token",
    404: "no such job (another user's job does not exist for you), or no such artifact",
    408: "the request body did not arrive in time",
    409: "the job's state or output conflicts (already finished; output overlaps another job's)",
    413: "the request body is over the service's limit",
    422: "invalid parameters or spec; each item names its key path",
    429: "over a per-user limit (active jobs, log streams)",
    503: "Ray, the job store or the job's storage is not answering; try again",
}


def error_responses(*codes: int, **meaning: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer with `codes` (401 always: every route but /healthz needs a
    token); a keyword `_409="..."` says what a code means on that route."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted(set(codes)):
        out[code] = {"model": ErrorOut, "description": meaning.get(f"_{code}", MEANING[code])}
    return out


def one_error_model(app: Any) -> dict[str, Any]:
    """The app's OpenAPI document with FastAPI's default 422 model (HTTPValidationError) replaced by ErrorOut,
    which has the same shape: every error of every route is then described by one model. Built once."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    ref = "#/components/schemas/ErrorOut"
    for ops in doc["paths"].values():
        for op in ops.values():
            for code, resp in op.get("responses", {}).items():
                schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") == "#/components/schemas/HTTPValidationError":
                    resp["content"]["application/json"]["schema"] = {"$ref": ref}
                    resp["description"] = MEANING[422]
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = doc
    return doc
