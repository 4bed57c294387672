"""The Segment Spec's message shapes (https://segment.com/docs/connections/spec/common/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clm.lib.errors import FieldError, dotted

MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]


class Message(BaseModel):
    """One call of any type. Unknown top-level fields are ignored, as Segment does."""

    # Numbers sent as ids become strings inside pydantic-core (no Python validator per message).
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    type: MessageType
    messageId: str | None = Field(None, max_length=255)
    userId: str | None = Field(None, max_length=255)
    anonymousId: str | None = Field(None, max_length=255)
    previousId: str | None = Field(None, max_length=255)
    groupId: str | None = Field(None, max_length=255)
    event: str | None = Field(None, max_length=255)
    name: str | None = Field(None, max_length=255)
    category: str | None = Field(None, max_length=255)
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)

    @field_validator("context", "properties", "traits", "integrations", mode="before")
    @classmethod
    def _null_is_empty(cls, value):
        return {} if value is None else value

    @model_validator(mode="after")
    def _required_by_type(self):
        if self.type == "alias":
            if not self.previousId:
                raise FieldError("previousId", "is required for alias")
            if not self.userId:
                raise FieldError("userId", "is required for alias")
        elif not (self.userId or self.anonymousId):
            raise FieldError("userId", "userId or anonymousId is required")
        if self.type == "track" and not self.event:
            raise FieldError("event", "is required for track")
        if self.type == "group" and not self.groupId:
            raise FieldError("groupId", "is required for group")
        return self


def field_error(exc: ValidationError) -> FieldError:
    """The first problem of a validation error as one FieldError naming the field."""
    err = exc.errors(include_url=False)[0]
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, FieldError):
        return ctx_error
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "literal_error" and err["loc"] == ("type",):
        msg = "must be one of identify, track, page, screen, group, alias"
    return FieldError(dotted(err["loc"]), msg, code=err["type"])


def parse_message(raw: Any, forced_type: str | None = None) -> Message:
    if not isinstance(raw, dict):
        raise FieldError(None, "each message must be a JSON object")
    if forced_type:
        raw = {**raw, "type": forced_type}
    try:
        return Message.model_validate(raw)
    except ValidationError as exc:
        raise field_error(exc) from None
