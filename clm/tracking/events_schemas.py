"""The shape of a stored event in the native API (/api/v1/events and customer timelines)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: str
    customer_id: int
    type: str = Field(description="track, page, screen, identify, group or alias.")
    name: str | None = Field(description="The event name of a track call, the page or screen name.")
    properties: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime = Field(description="When it happened (corrected for the device's clock).")
    received_at: datetime
    source: str


class EventPage(BaseModel):
    data: list[EventOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")
