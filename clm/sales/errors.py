"""The one refusal the sales services raise besides FieldError: a request that the current state forbids."""

from __future__ import annotations


class SalesConflict(Exception):
    """The request is well formed but the lead or opportunity is in a state that forbids it (HTTP 409)."""

    def __init__(self, code: str, message: str, field: str | None = None, status: int = 409):
        super().__init__(message)
        self.code, self.message, self.field, self.status = code, message, field, status
