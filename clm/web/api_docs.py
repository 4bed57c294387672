"""OpenAPI documentation of the native API's error answers, shared by its routers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, Field

_DESCRIPTIONS = {
    308: "The customer was merged into another; follow Location (the body names `merged_into_id`).",
    401: "No API key, or an unknown or revoked one.",
    403: "The API key lacks the scope this endpoint needs.",
    404: "No such id.",
    409: "A unique value belongs to another record, or the customer was merged (see `merged_into_id`).",
    422: "A parameter or body field is invalid; `field` names it.",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable machine-readable word, e.g. not_found, forbidden, invalid.")
    message: str = Field(description="One sentence for people saying what is wrong and how to fix it.")
    field: str | None = Field(description="The dotted path of the offending input, or null.")


class ErrorOut(BaseModel):
    """The one error shape of every API: {"error": {"code", "message", "field"}}."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """`responses=` for a route: the error envelope for 401 and 403 plus `statuses`."""
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in (401, 403, *statuses)}


MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200, description="Rows per page, at most 200.")]
Cursor = Annotated[str | None, Query(max_length=512, description="The `next` value of the previous page.")]


def text_param(description: str, max_length: int = 255):
    """A free-text query parameter: bounded, and without NUL (which PostgreSQL cannot compare)."""
    return Query(max_length=max_length, pattern=r"^[^\x00]*$", description=description)


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


Instant = Annotated[datetime, AfterValidator(_to_utc)]
"""A point in time from a query parameter: ISO 8601, taken as UTC without an offset, returned aware in UTC."""
