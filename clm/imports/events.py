"""Importing events: each row becomes a Segment `track` message and goes through the tracking pipeline
(`clm.tracking.ingest.ingest`), so an imported event is the same fact as a tracked one.

Idempotent: the messageId is the row's message_id column or, without one, a hash of the row's
content, and the pipeline skips messageIds it has stored.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, tzinfo
from typing import Any

import orjson
from sqlalchemy.orm import Session

from clm.customers.profile import normalize_email, phone_e164
from clm.imports.mapping import Mapping
from clm.imports.readers import Row
from clm.imports.report import Rejection
from clm.imports.service import Unit, Written, one_unit_per_row, rejection
from clm.imports.values import json_object, parse_time
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.tracking.ingest import ingest

_MESSAGE_FIELDS = {"userId": "user_id", "anonymousId": "anonymous_id", "event": "event",
                   "messageId": "message_id", "timestamp": "timestamp"}


def row_message_id(values: dict[str, Any]) -> str:
    """A deterministic id for a row without one: the same content gives the same id on every import.

    Cells are stripped and empty ones dropped, so re-saving the file in a spreadsheet keeps the ids.
    """
    clean = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    clean = {k: v for k, v in clean.items() if v not in (None, "")}
    digest = hashlib.sha256(orjson.dumps(clean, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"import-{digest[:40]}"


class EventImporter:
    kind = "events"

    def __init__(self, mapping: Mapping, *, region: str = "VN", currency: str = "VND", timezone: tzinfo,
                 received_at: datetime | None = None, source: str = "import"):
        self.mapping = mapping
        self.region = region
        self.currency = currency
        self.timezone = timezone
        self.received_at = received_at or utcnow()
        self.source = source

    def group_of(self, row: Row) -> None:
        return None

    def prepare(self, rows: list[Row]) -> tuple[list[Unit], list[Rejection]]:
        return one_unit_per_row(rows, self.message, lambda field: self.mapping.column(field) if field else None)

    def message(self, row: Row) -> dict[str, Any]:
        """The Segment track message for a row."""
        ours, extra = self.mapping.read(row.values)
        if "event" not in ours:
            raise FieldError("event", "is required (the event name)")
        if "timestamp" not in ours:
            raise FieldError("timestamp", "is required (when the event happened)")
        timestamp = parse_time(ours["timestamp"], "timestamp", self.timezone)
        properties = json_object(ours["properties"], "properties") if "properties" in ours else {}
        properties = {**properties, **extra}
        traits = {}
        if "email" in ours:
            traits["email"] = normalize_email(str(ours["email"]))
        if "phone" in ours:
            traits["phone"] = phone_e164(ours["phone"], self.region)
        message: dict[str, Any] = {
            "type": "track", "event": str(ours["event"]), "timestamp": timestamp.isoformat(),
            "messageId": str(ours["message_id"]) if "message_id" in ours else row_message_id(row.values),
            "properties": properties, "context": {"traits": traits} if traits else {},
        }
        for ours_name, theirs in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
            if ours_name in ours:
                message[theirs] = str(ours[ours_name])
        if "userId" not in message and "anonymousId" not in message:
            if not traits:
                raise FieldError(None, "no user_id, anonymous_id, email or phone: nothing says whose event this is")
            # The pipeline needs a user or anonymous id; a contact-derived anonymous id resolves
            # through the contact's identity like any visitor who later identified.
            message["anonymousId"] = f"{'email' if 'email' in traits else 'phone'}:" + (
                traits.get("email") or traits["phone"])
        return message

    def write(self, session: Session, units: list[Unit]) -> Written:
        result = ingest(session, [u.data for u in units], received_at=self.received_at, region=self.region,
                        currency=self.currency, source=self.source)
        out = Written(imported=result.accepted, unchanged=result.duplicates)
        for rej in result.rejected:
            row = units[rej.index].rows[0]
            column = self._column(rej.field)
            reason = rej.message if column in (None, rej.field) else f"{rej.field}: {rej.message}"
            out.rejected.append(rejection(row, column, reason))
        return out

    def _column(self, field: str | None) -> str | None:
        if not field:
            return None
        if field in _MESSAGE_FIELDS:
            return self.mapping.column(_MESSAGE_FIELDS[field])
        if field.startswith("properties."):
            name = field.split(".")[1].split("[")[0]
            return name if name in (self.mapping.extras or ()) else self.mapping.column("properties")
        return field
