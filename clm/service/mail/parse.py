"""Reading one inbound email: addresses, threading headers, text, sanitised HTML, attachments, loop signs.

Mail arrives in every shape real clients produce: Outlook's quoted-printable windows-1258, Gmail's
base64 UTF-8 with RFC 2047 headers, Apple Mail's nested multipart/related, forwarded chains with
message/rfc822 parts, delivery reports and auto-replies. `parse` never raises anything but `Malformed`,
whose reason says what is wrong (the caller quarantines the mail with it). Nothing here touches the
database.

- Text: the first text/plain body part; without one, the HTML turned into text. Normalised to NFC
  (windows-1258 writes Vietnamese tones as combining marks) and with NUL characters removed.
- HTML: sanitised with nh3 (Ammonia): scripts, event handlers, styles and `javascript:` links are gone.
- Attachments: every part with a filename or `Content-Disposition: attachment`, and forwarded messages
  (message/rfc822, kept whole as `.eml`); the filename is reduced to a safe base name. One over
  `max_attachment_bytes` makes the mail malformed: it is kept in quarantine, never cut silently.
- Loops (`automatic`): `Auto-Submitted` other than `no`, `Precedence: bulk/junk/list`, `X-Autoreply`
  or `X-Autorespond`, a delivery report (multipart/report), or a null return path.
"""

from __future__ import annotations

import codecs
import hashlib
import html as html_lib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.errors import (
    CloseBoundaryNotFoundDefect,
    MultipartInvariantViolationDefect,
    NoBoundaryInMultipartDefect,
    StartBoundaryNotFoundDefect,
)
from email.header import decode_header
from email.message import Message as MimeMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import nh3

from clm.lib.clock import as_utc

_FATAL_DEFECTS = (NoBoundaryInMultipartDefect, StartBoundaryNotFoundDefect, CloseBoundaryNotFoundDefect,
                  MultipartInvariantViolationDefect)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
MAX_NAME = 200


class Malformed(ValueError):
    """The mail cannot be read as a customer's message; `reason` says why (kept with the quarantined mail)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Mail:
    sender: str  # the From address, lower-cased
    sender_name: str | None
    to: list[str]
    cc: list[str]
    subject: str
    message_id: str  # with angle brackets; derived from the bytes when the mail has none
    in_reply_to: list[str]
    references: list[str]
    date: datetime | None
    text: str
    html: str | None  # sanitised
    attachments: list[Attachment] = field(default_factory=list)
    automatic: str | None = None  # why this is machine mail (never opens a ticket, never answered)
    reply_to: str | None = None

    @property
    def thread_root(self) -> str:
        """The first message of the thread this mail belongs to (the conversation's thread key)."""
        if self.references:
            return self.references[0]
        if self.in_reply_to:
            return self.in_reply_to[0]
        return self.message_id


def decode_words(value: str | None, where: str) -> str:
    """An RFC 2047 header value as text; an encoded word in an unknown charset is Malformed."""
    if value is None:
        return ""
    try:
        parts = decode_header(str(value))
    except Exception as exc:  # the email package raises HeaderParseError and friends
        raise Malformed(f"the {where} header cannot be decoded: {exc}") from None
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        out.append(_decode(chunk, charset or "ascii", f"the {where} header", fallback=True))
    return _clean(re.sub(r"\r?\n[ \t]*", " ", "".join(out))).strip()


def _codec(charset: str, where: str) -> str:
    name = charset.strip().strip('"').lower()
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        return "utf-8"  # undeclared 8-bit text: UTF-8 is what clients send nearly always
    if name in ("windows-1258", "cp1258", "x-cp1258"):
        return "cp1258"
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise Malformed(f"{where} uses the unknown charset {charset!r}") from None


def _decode(data: bytes, charset: str, where: str, fallback: bool = False) -> str:
    codec = _codec(charset, where)
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        if codec == "utf-8" and fallback:
            return data.decode("cp1258", errors="replace")
        return data.decode(codec, errors="replace")


def _text_of(value) -> str:
    """A header's value as text. compat32 hands back a `Header` (not a str) for a field with raw 8-bit bytes,
    which clients still send now and then: those are read as UTF-8 (windows-1258 when not UTF-8)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    parts = []
    for chunk, charset in decode_header(value):
        parts.append(chunk if isinstance(chunk, str) else _decode(chunk, charset or "utf-8", "a header", fallback=True))
    return "".join(parts)


def _get(mime: MimeMessage, name: str) -> str | None:
    value = mime.get(name)
    return None if value is None else _text_of(value)


def _get_all(mime: MimeMessage, name: str) -> list[str]:
    return [_text_of(v) for v in mime.get_all(name) or []]


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text.replace("\x00", "").replace("\r\n", "\n"))


def _addresses(values: list[str]) -> list[str]:
    found = []
    for _, address in getaddresses([decode_words(v, "address") for v in values if v]):
        address = address.strip().lower()
        if _EMAIL.match(address) and address not in found:
            found.append(address)
    return found


def automatic_reason(mime: MimeMessage, envelope_from: str | None = None) -> str | None:
    """Why this mail was written by a machine (RFC 3834 and the usual signs), or None for a person's mail."""
    auto = (_get(mime, "Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = (_get(mime, "Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for header in ("X-Autoreply", "X-Autorespond"):
        value = (_get(mime, header) or "").strip()
        if value and value.lower() not in ("no", "false", "0"):
            return f"{header}: {value}"
    if mime.get_content_type() == "multipart/report":
        return f"a delivery report ({mime.get_param('report-type') or 'report'})"
    return_path = _get(mime, "Return-Path")
    if envelope_from is not None and envelope_from.strip() in ("", "<>"):
        return "a null return path (MAIL FROM:<>)"
    if return_path is not None and return_path.strip() == "<>":
        return "a null return path (Return-Path: <>)"
    return None


def _filename(part: MimeMessage) -> str | None:
    raw = part.get_filename()
    if raw is None and part.get_content_type() == "message/rfc822":
        return "forwarded.eml"
    if raw is None:
        return None
    name = decode_words(raw, "attachment name") if "=?" in raw else _clean(raw)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .") or "attachment"
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:MAX_NAME]
    return name


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n} bytes"


class _Reader:
    def __init__(self, max_attachment_bytes: int):
        self.limit = max_attachment_bytes
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[Attachment] = []

    def walk(self, part: MimeMessage, depth: int = 0) -> None:
        if depth > 20:
            raise Malformed("the MIME structure is nested more than 20 levels deep")
        for defect in part.defects:
            if isinstance(defect, _FATAL_DEFECTS):
                raise Malformed(f"broken MIME structure: {type(defect).__name__} in a {part.get_content_type()} part")
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        name = _filename(part)
        is_text = content_type.startswith("text/")
        if content_type == "message/rfc822" or disposition == "attachment" or (name and not is_text):
            self._attach(part, name or "attachment", content_type)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if not isinstance(payload, list):
                raise Malformed(f"a {content_type} part has no parts")
            for sub in payload:
                self.walk(sub, depth + 1)
            return
        if content_type in ("text/plain", "text/html"):
            data = part.get_payload(decode=True) or b""
            text = _clean(_decode(data, part.get_content_charset() or "utf-8", f"a {content_type} part"))
            (self.texts if content_type == "text/plain" else self.htmls).append(text)
            return
        if is_text and name:
            self._attach(part, name, content_type)
            return
        if not content_type.startswith("multipart/") and part.get_payload():
            self._attach(part, name or "attachment", content_type)

    def _attach(self, part: MimeMessage, name: str, content_type: str) -> None:
        if content_type == "message/rfc822":
            inner = part.get_payload()
            data = inner[0].as_bytes() if isinstance(inner, list) and inner else (part.get_payload(decode=True) or b"")
        else:
            data = part.get_payload(decode=True) or b""
        if len(data) > self.limit:
            raise Malformed(f"the attachment {name!r} is {_size(len(data))}, over the limit of {_size(self.limit)} "
                            "(CLM_MAIL_MAX_ATTACHMENT_BYTES)")
        self.attachments.append(Attachment(name, content_type, data))


def sanitize_html(html: str) -> str:
    """HTML safe to show in the agent's page: nh3's allow-list, links with rel=noopener noreferrer."""
    return nh3.clean(html, link_rel="noopener noreferrer nofollow")


def html_to_text(html: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>|</h\d>", "\n", html)
    text = html_lib.unescape(nh3.clean(text, tags=set()))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return as_utc(parsed) if parsed is not None else None


def parse(raw: bytes, *, max_attachment_bytes: int, envelope_from: str | None = None) -> Mail:
    """One raw RFC 5322 message (bytes as received) read into a `Mail`, or `Malformed` with the reason."""
    if not raw or not raw.strip():
        raise Malformed("the message is empty")
    try:
        mime = message_from_bytes(raw)
    except Exception as exc:  # the compat32 parser is lenient; anything it raises is a broken message
        raise Malformed(f"the message cannot be parsed: {exc}") from None
    if not mime.keys():
        raise Malformed("the message has no headers")
    from_header = _get(mime, "From")
    if not from_header:
        raise Malformed("missing From header: there is no sender to answer")
    name, address = parseaddr(decode_words(from_header, "From"))
    address = address.strip().lower()
    if not _EMAIL.match(address):
        raise Malformed(f"the From header {from_header!r} holds no valid address")
    message_id = (_get(mime, "Message-ID") or "").strip()
    if not re.fullmatch(r"<[^<>\s]{1,900}>", message_id):
        # No (usable) Message-ID: one derived from the bytes, so the same mail delivered twice stores once.
        message_id = f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.clm.invalid>"
    reader = _Reader(max_attachment_bytes)
    try:
        reader.walk(mime)
    except Malformed:
        raise
    except Exception as exc:  # a part the email package cannot decode
        raise Malformed(f"a part cannot be read: {type(exc).__name__}: {exc}") from None
    html = "\n".join(reader.htmls) if reader.htmls else None
    text = "\n\n".join(t.strip() for t in reader.texts if t.strip())
    if not text and html:
        text = html_to_text(html)
    references = re.findall(r"<[^<>\s]{1,900}>", _get(mime, "References") or "")
    return Mail(
        sender=address, sender_name=(name.strip() or None), to=_addresses(_get_all(mime, "To") or []),
        cc=_addresses(_get_all(mime, "Cc") or []), subject=decode_words(_get(mime, "Subject"), "Subject")[:255],
        message_id=message_id, in_reply_to=re.findall(r"<[^<>\s]{1,900}>", _get(mime, "In-Reply-To") or ""),
        references=references, date=_date(_get(mime, "Date")), text=text, html=sanitize_html(html) if html else None,
        attachments=reader.attachments, automatic=automatic_reason(mime, envelope_from),
        reply_to=(_addresses(_get_all(mime, "Reply-To") or []) or [None])[0])
