"""Downloading a file a customer sent (an inbound email's attachment), for the staff who may see its ticket.

The file is answered as a download (`Content-Disposition: attachment`), never shown in the dashboard's own
origin: its type is the one the mail declared only when that type cannot run in a browser (pictures, PDF,
plain text, office documents, archives); anything else (HTML, SVG, XML, scripts, unknown types) is sent as
`application/octet-stream`. `X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy keep
the browser from guessing or running it. The file name is the safe base name kept when the mail came in,
given to the browser in RFC 6266 form (an ASCII fallback and the UTF-8 name).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.lib.errors import NotFound
from clm.service.mail.models import Attachment
from clm.service.models import Message, Ticket

# Types a browser shows but never runs; everything else is a plain byte download.
SAFE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/heic", "image/avif",
    "application/pdf", "text/plain", "text/csv", "text/calendar", "message/rfc822",
    "application/zip", "application/x-7z-compressed", "application/x-rar-compressed", "application/gzip",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "audio/mpeg", "audio/ogg", "audio/wav", "video/mp4", "video/quicktime",
})
FALLBACK_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Download:
    """What the route sends: the bytes and the headers that make them a safe download."""

    data: bytes
    media_type: str
    headers: dict[str, str]
    ticket_id: int


def safe_type(declared: str | None) -> str:
    """The declared type when it is one a browser cannot run; otherwise application/octet-stream (the
    parameters are dropped: a charset the sender declared may be wrong, and the file is saved, not shown)."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else FALLBACK_TYPE


def disposition(filename: str) -> str:
    """`attachment; filename="ascii"; filename*=UTF-8''...`: Vietnamese names reach the browser whole,
    older clients get the name without diacritics; quotes, backslashes and control characters never pass."""
    name = "".join(ch for ch in (filename or "") if unicodedata.category(ch)[0] != "C").strip() or "attachment"
    ascii_name = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    ascii_name = "".join(ch for ch in ascii_name if ch.isascii() and ch not in '"\\').strip() or "attachment"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def download(session: Session, attachment_id: int) -> Download:
    """The attachment with its ticket (the ticket a merge moved its message to). NotFound for an unknown id."""
    row = session.execute(
        sa.select(Attachment, Message.ticket_id).join(Message, Message.id == Attachment.message_id)
        .join(Ticket, Ticket.id == Message.ticket_id).where(Attachment.id == attachment_id)).first()
    if row is None:
        raise NotFound("attachment", attachment_id)
    attachment, ticket_id = row
    return Download(data=attachment.data, media_type=safe_type(attachment.content_type), ticket_id=ticket_id,
                    headers={"Content-Disposition": disposition(attachment.filename),
                             "X-Content-Type-Options": "nosniff",
                             "Content-Security-Policy": "default-src 'none'; sandbox",
                             "Cache-Control": "private, no-store",
                             "X-Attachment-SHA256": attachment.sha256})
