"""One inbound email, as raw bytes, to a message on the right ticket of the right customer, or to quarantine.

`accept` is what the SMTP listener, the IMAP poller and the CLI call, in the caller's transaction (the
caller commits before telling the sending server "accepted"). It never raises for the mail's sake:

1. The mail is read (clm.service.mail.parse). Malformed mail is quarantined with the reason.
2. Machine mail (auto-replies, bulk, delivery reports, a null return path, mail from clm's own address)
   is quarantined as `automatic`: it opens no ticket and gets no answer. A delivery report also goes to
   the channels' bounce handling, so a dead address is suppressed.
3. A mail seen before (same Message-ID) is a duplicate: nothing new is stored.
4. Threading, strongest evidence first:
   a. our signed Message-ID in In-Reply-To / References (clm.service.mail.ids): that ticket;
   b. a ticket number in the subject (`[TK-000123]`), only when the sender is the ticket's customer (any
      of their email addresses) or was on the ticket's mail (To/Cc): a stranger quoting a number opens
      a ticket of their own;
   c. a reply to a customer's mail already on a ticket, from that ticket's people: that ticket;
   d. otherwise a new conversation (and ticket) for the sender, found by their email identity or created.
5. The message goes through `clm.service.conversations.receive` (which opens, reopens and routes), with
   its sanitised HTML, its headers (`meta`) and its attachments stored beside it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clm.customers.models import Customer, Identity
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.service.mail import ids
from clm.service.mail.models import Attachment, Quarantined
from clm.service.mail.parse import Mail, Malformed, parse
from clm.service.models import Conversation, Inbox, Message, Ticket

MAX_EXTERNAL = 255


@dataclass(frozen=True)
class Outcome:
    """What became of a mail: `stored` (a message on a ticket), `duplicate` (seen before), `automatic`
    or `malformed` (quarantined, with the reason)."""

    status: str
    reason: str | None = None
    ticket_id: int | None = None
    ticket_number: str | None = None
    message_id: int | None = None
    quarantine_id: int | None = None
    threaded_by: str | None = None


def _settings(settings):
    if settings is not None:
        return settings
    from clm.config import get_settings

    return get_settings()


def external_id(message_id: str) -> str:
    """The service message's external id for a mail: `email:<Message-ID>` (a digest when too long)."""
    value = f"email:{message_id}"
    if len(value) <= MAX_EXTERNAL:
        return value
    return "email:sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def quarantine(session: Session, raw: bytes, kind: str, reason: str, *, source: str, envelope_from: str | None,
               envelope_to: str | None, mail: Mail | None = None, now: datetime | None = None) -> Quarantined:
    """Keep the mail whole with why; the same bytes twice are kept once."""
    digest = hashlib.sha256(raw).hexdigest()
    known = session.scalar(sa.select(Quarantined).where(Quarantined.sha256 == digest))
    if known is not None:
        return known
    row = Quarantined(kind=kind, reason=reason[:2000], source=source, envelope_from=(envelope_from or None) and
                      envelope_from[:320], envelope_to=(envelope_to or None) and envelope_to[:320],
                      sender=mail.sender[:320] if mail else None, subject=mail.subject[:255] if mail else None,
                      message_id_header=mail.message_id[:255] if mail else None, size=len(raw), sha256=digest,
                      raw=raw, received_at=now or utcnow())
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same mail arriving twice at once
        return session.scalar(sa.select(Quarantined).where(Quarantined.sha256 == digest))
    return row


def _held(row: Quarantined) -> Outcome:
    return Outcome(row.kind, row.reason, quarantine_id=row.id)


def _bounces(session: Session, raw: bytes) -> None:
    """A delivery report: the channels' bounce handling marks the message and suppresses a dead address."""
    from clm.channels.inbound.bounces import NotADsn, parse_dsn, record_bounce

    try:
        bounces, _ = parse_dsn(raw)
    except (NotADsn, ValueError, LookupError):
        return
    for bounce in bounces:
        with session.begin_nested():
            record_bounce(session, bounce)


def inbox_for(session: Session, mail: Mail, envelope_to: str | None) -> Inbox:
    """The email inbox the mail was sent to (by address), else the first one; one is made when none exists."""
    inboxes = list(session.scalars(sa.select(Inbox).where(Inbox.channel == "email", Inbox.active.is_(True))
                                   .order_by(Inbox.id)))
    wanted = [a.lower() for a in ([envelope_to] if envelope_to else []) + mail.to + mail.cc]
    for address in wanted:
        for inbox in inboxes:
            if inbox.address and inbox.address.strip().lower() == address:
                return inbox
    if inboxes:
        return inboxes[0]
    from clm.service.conversations import InboxIn, save_inbox

    name = "Email" if session.scalar(sa.select(Inbox.id).where(Inbox.name == "Email")) is None else "Email inbox"
    return save_inbox(session, InboxIn(name=name, channel="email", address=(envelope_to or (mail.to or [None])[0])))


def customer_for(session: Session, address: str, name: str | None) -> int:
    """The customer with this email (an email identity, else the profile's email), created when new."""
    found = session.scalar(sa.select(Identity.customer_id).where(Identity.kind == "email", Identity.value == address)
                           .order_by(Identity.id).limit(1))
    if found is None:
        found = session.scalar(sa.select(Customer.id).where(Customer.email == address,
                                                            Customer.merged_into_id.is_(None)).limit(1))
    if found is not None:
        customer = session.get(Customer, found)
        while customer.merged_into_id is not None:
            customer = session.get(Customer, customer.merged_into_id)
        return customer.id
    from clm.customers.service import create_customer

    fields = {"email": address}
    if name and "@" not in name:
        fields["full_name"] = name[:200]
    return create_customer(session, fields).id


def _addresses_of(session: Session, ticket: Ticket) -> set[str]:
    """Who may thread mail onto the ticket by its number: the customer's email addresses and everyone
    who was on the ticket's mail (From, To, Cc of its messages), less the shop's own inbox addresses."""
    people = {v.lower() for v in session.scalars(sa.select(Identity.value).where(
        Identity.customer_id == ticket.customer_id, Identity.kind == "email"))}
    customer = session.get(Customer, ticket.customer_id)
    if customer is not None and customer.email:
        people.add(customer.email.lower())
    for meta in session.scalars(sa.select(Message.meta).where(Message.ticket_id == ticket.id,
                                                              Message.direction == "in")):
        meta = meta or {}
        for key in ("from", "to", "cc"):
            value = meta.get(key)
            people.update(a.lower() for a in ([value] if isinstance(value, str) else value or [])
                          if isinstance(a, str))
    ours = {a.lower() for a in session.scalars(sa.select(Inbox.address).where(Inbox.address.is_not(None)))}
    return people - ours


def _live(session: Session, ticket_id: int) -> Ticket | None:
    ticket = session.get(Ticket, ticket_id)
    hops = 0
    while ticket is not None and ticket.merged_into_id is not None and hops < 10:
        ticket, hops = session.get(Ticket, ticket.merged_into_id), hops + 1
    return ticket


def find_ticket(session: Session, mail: Mail, secret: bytes) -> tuple[Ticket, str] | None:
    """The ticket the mail answers and the evidence (rules 4a-c of the module docstring), or None."""
    mentioned = list(reversed(mail.in_reply_to)) + list(reversed(mail.references))
    for value in mentioned:
        signed = ids.read(secret, value)
        if signed is not None:
            ticket = _live(session, signed.ticket_id)
            if ticket is not None:
                return ticket, "signed message id"
    number = ids.subject_token(mail.subject)
    if number is not None:
        ticket = session.scalar(sa.select(Ticket).where(Ticket.number == number))
        ticket = _live(session, ticket.id) if ticket is not None else None
        if ticket is not None and mail.sender in _addresses_of(session, ticket):
            return ticket, "ticket number in the subject"
    for value in mentioned:
        known = session.scalar(sa.select(Message.ticket_id).where(Message.external_id == external_id(value)))
        ticket = _live(session, known) if known is not None else None
        if ticket is not None and mail.sender in _addresses_of(session, ticket):
            return ticket, "reply to a message on the ticket"
    return None


def _thread_key(session: Session, ticket: Ticket, inbox: Inbox) -> str | None:
    return session.scalar(sa.select(Conversation.thread_key).where(
        Conversation.ticket_id == ticket.id, Conversation.inbox_id == inbox.id)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(1))


def _inbox_addresses(session: Session) -> set[str]:
    return {a.strip().lower() for a in session.scalars(sa.select(Inbox.address).where(
        Inbox.channel == "email", Inbox.address.is_not(None)))}


def _own_address(settings) -> str:
    from email.utils import parseaddr

    return parseaddr(settings.email_from)[1].lower()


def accept(session: Session, raw: bytes, *, source: str = "smtp", envelope_from: str | None = None,
           envelope_to: str | None = None, settings=None, now: datetime | None = None) -> Outcome:
    """Store one inbound mail (see the module docstring); the caller commits, then acknowledges."""
    settings, now = _settings(settings), now or utcnow()
    where = {"source": source, "envelope_from": envelope_from, "envelope_to": envelope_to, "now": now}
    try:
        mail = parse(raw, max_attachment_bytes=settings.mail_max_attachment_bytes, envelope_from=envelope_from)
    except Malformed as exc:
        return _held(quarantine(session, raw, "malformed", exc.reason, **where))
    except Exception as exc:  # a reader bug must not lose the mail: it is kept, with what went wrong
        return _held(quarantine(session, raw, "malformed", f"the mail could not be read ({type(exc).__name__}: "
                                f"{exc})", **where))
    automatic = mail.automatic
    if automatic is None and (mail.sender == _own_address(settings) or mail.sender in _inbox_addresses(session)):
        automatic = "mail from clm's own address (a loop)"
    if automatic is not None:
        if automatic.startswith("a delivery report"):
            _bounces(session, raw)
        return _held(quarantine(session, raw, "automatic", automatic, mail=mail, **where))
    return store(session, mail, source=source, envelope_to=envelope_to, settings=settings, now=now,
                 raw=raw, envelope_from=envelope_from)


def store(session: Session, mail: Mail, *, source: str, envelope_to: str | None, settings, now: datetime,
          raw: bytes | None = None, envelope_from: str | None = None) -> Outcome:
    """A person's mail (already read and checked for loops) onto its ticket: steps 3-5 of the module docstring."""
    from clm.service.conversations import InboundIn, receive

    external = external_id(mail.message_id)
    known = session.scalar(sa.select(Message).where(Message.external_id == external))
    if known is not None:
        return Outcome("duplicate", ticket_id=known.ticket_id, message_id=known.id)
    inbox = inbox_for(session, mail, envelope_to)
    found = find_ticket(session, mail, ids.key(settings))
    try:
        if found is not None:
            ticket, threaded_by = found
            customer_id, thread_key = ticket.customer_id, _thread_key(session, ticket, inbox)
        else:
            threaded_by = None
            customer_id, thread_key = customer_for(session, mail.sender, mail.sender_name), mail.thread_root[:255]
    except FieldError as exc:  # an address the customer rules refuse
        if raw is None:
            raise
        return _held(quarantine(session, raw, "malformed", f"the sender cannot be a customer: {exc}", mail=mail,
                                source=source, envelope_from=envelope_from, envelope_to=envelope_to, now=now))
    files = [{"filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}
             for a in mail.attachments]
    body = mail.text.strip() or mail.subject or f"({len(files)} attachment(s), no text)"
    received = receive(session, InboundIn(inbox_id=inbox.id, customer_id=customer_id, body=body[:100_000],
                                          subject=mail.subject or None, thread_key=thread_key,
                                          external_id=external, attachments=files[:50]), now=now)
    message = received.message
    if not received.created:
        return Outcome("duplicate", ticket_id=message.ticket_id, message_id=message.id)
    message.html = mail.html
    message.meta = {"from": mail.sender, "name": mail.sender_name, "to": mail.to, "cc": mail.cc,
                    "subject": mail.subject, "message_id": mail.message_id, "in_reply_to": mail.in_reply_to,
                    "references": mail.references[-20:], "date": mail.date.isoformat() if mail.date else None,
                    "reply_to": mail.reply_to, "source": source, "threaded_by": threaded_by}
    for part, entry in zip(mail.attachments, files, strict=False):
        row = Attachment(message_id=message.id, customer_id=message.customer_id, filename=part.filename[:255],
                         content_type=part.content_type[:127], size=part.size, sha256=part.sha256, data=part.data,
                         created_at=now)
        session.add(row)
        session.flush()
        entry["id"] = row.id
    message.attachments = files
    session.flush()
    ticket = received.ticket
    opened = session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.ticket_id == ticket.id)) == 1
    if opened and settings.mail_auto_ack:
        from clm.service.outbound import acknowledge

        conversation = session.get(Conversation, message.conversation_id)
        acknowledge(session, ticket, conversation, settings=settings, now=now)
    return Outcome("stored", ticket_id=ticket.id, ticket_number=ticket.number, message_id=message.id,
                   threaded_by=threaded_by)


def release(session: Session, quarantine_id: int, *, settings=None, now: datetime | None = None) -> Outcome:
    """A person decided a quarantined mail is a customer's message after all: it goes in as one, threaded
    like any mail (what made it machine mail is ignored; a malformed mail must now be readable)."""
    row = session.get(Quarantined, quarantine_id)
    if row is None:
        from clm.lib.errors import NotFound

        raise NotFound("quarantined mail", quarantine_id)
    if row.released_at is not None:
        raise FieldError("id", f"mail {quarantine_id} was released already")
    settings, now = _settings(settings), now or utcnow()
    try:
        mail = parse(row.raw, max_attachment_bytes=settings.mail_max_attachment_bytes)
    except Malformed as exc:
        raise FieldError("id", f"mail {quarantine_id} still cannot be read: {exc.reason}") from None
    outcome = store(session, mail, source=row.source, envelope_to=row.envelope_to, settings=settings, now=now)
    row.released_at, row.ticket_id = now, outcome.ticket_id
    session.flush()
    return outcome
