"""The refusal the service desk raises besides FieldError and NotFound: a request the current state forbids."""

from __future__ import annotations


class ServiceConflict(Exception):
    """Well formed, but the ticket or agent is in a state that forbids it (HTTP 409): merging a ticket into
    itself or into another customer's, assigning an agent who is at capacity."""

    def __init__(self, code: str, message: str, field: str | None = None, status: int = 409):
        super().__init__(message)
        self.code, self.message, self.field, self.status = code, message, field, status
