"""The one JSON error envelope, and the handlers that turn every failure into it."""

from __future__ import annotations

import logging

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clm.lib.errors import FieldError, NotFound, dotted
from clm.tracking.writer import WriterUnavailable

log = logging.getLogger("clm.web")


def error_body(code: str, message: str, field: str | None = None, **extra) -> dict:
    """The error contract of every API: {"error": {"code", "message", "field", ...}}.

    `code` is a stable machine-readable word, `message` one sentence for people saying what is wrong
    and, where it helps, how to fix it; `field` is the dotted path of the offending input or null.
    """
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None, **extra):
    return JSONResponse(error_body(code, message, field, **extra), status_code=status, headers=headers)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None, headers=None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers, self.extra = (
            status, code, message, field, headers, extra
        )


def _loc(loc) -> str | None:
    return dotted([p for p in loc if p not in ("body", "query", "path", "header")])


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers, **exc.extra)

    @app.exception_handler(FieldError)
    async def _field_error(_req: Request, exc: FieldError):
        return error_response(422, exc.code, f"{exc.field}: {exc.message}" if exc.field else exc.message, exc.field)

    @app.exception_handler(NotFound)
    async def _not_found(_req: Request, exc: NotFound):
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        field = _loc(err.get("loc", ()))
        msg = "is required" if err.get("type") == "missing" else err.get("msg", "is invalid")
        if err.get("type") == "json_invalid":
            return error_response(400, "invalid_json", "the body is not valid JSON")
        return error_response(422, err.get("type", "invalid"), f"{field}: {msg}" if field else msg, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException):
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    async def _db_down(_req: Request, exc: sqlalchemy.exc.OperationalError):
        log.error("database unavailable: %s", exc.__class__.__name__)
        return error_response(503, "database_unavailable",
                              "the database is unavailable; nothing was stored, retry later",
                              headers={"Retry-After": "5"})

    @app.exception_handler(WriterUnavailable)
    async def _writer_down(_req: Request, exc: WriterUnavailable):
        log.error("ingestion writer unavailable: %s", exc)
        return error_response(503, "database_unavailable",
                              "the database is unavailable; retry later (a retry stores each messageId once)",
                              headers={"Retry-After": "5"})

    @app.exception_handler(sqlalchemy.exc.InterfaceError)
    async def _db_iface(req: Request, exc):
        return await _db_down(req, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception):
        log.exception("unexpected error")
        return error_response(500, "internal", "an unexpected error happened; it has been logged")
