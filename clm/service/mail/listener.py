"""`clm mail serve`: an SMTP listener (aiosmtpd) that takes mail for the shop's inboxes.

Point the shop's MX (or a forwarding rule of its mail host) at it. Each mail is stored, or quarantined
with the reason, and committed **before** the listener answers 250: accepted mail is never lost. When the
database cannot take it, the answer is 451 and the sending server tries again later (a retried mail is
stored once: clm.service.mail.inbound). It takes mail only for the addresses of the active email inboxes
(any address while no inbox has one) and never relays; mail larger than CLM_MAIL_MAX_BYTES is refused
with 552 before it is read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.service.mail.inbound import Outcome, accept
from clm.service.models import Inbox

log = logging.getLogger("clm.mail")


class InboundHandler:
    """The aiosmtpd handler: RCPT checks the address, DATA stores the mail in a worker thread."""

    def __init__(self, session_factory: Callable[[], Session], settings):
        self.session_factory = session_factory
        self.settings = settings

    def _addresses(self) -> set[str]:
        with self.session_factory() as session:
            return {a.strip().lower() for a in session.scalars(sa.select(Inbox.address).where(
                Inbox.channel == "email", Inbox.active.is_(True), Inbox.address.is_not(None)))}

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options):
        try:
            known = await asyncio.get_running_loop().run_in_executor(None, self._addresses)
        except Exception:
            log.exception("cannot read the inboxes")
            return "451 4.3.0 Temporary failure, try again later"
        if known and address.strip().lower() not in known:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def store(self, raw: bytes, mail_from: str | None, rcpt_tos: list[str]) -> Outcome:
        with self.session_factory() as session:
            for_writing(session)
            outcome = accept(session, raw, source="smtp", envelope_from=mail_from,
                             envelope_to=rcpt_tos[0] if rcpt_tos else None, settings=self.settings)
            session.commit()
        return outcome

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(
                None, self.store, raw, envelope.mail_from, list(envelope.rcpt_tos))
        except Exception:  # the mail is not stored: the sender keeps it and retries
            log.exception("could not store a mail from %s", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        log.info("mail from %s: %s %s", envelope.mail_from, outcome.status, outcome.ticket_number or outcome.reason)
        return "250 2.0.0 OK: " + (outcome.ticket_number or outcome.status)


def controller(session_factory: Callable[[], Session], settings, *, host: str | None = None,
               port: int | None = None) -> Controller:
    """The listener, not yet started (`.start()` runs it in a thread, `.stop()` ends it)."""
    return Controller(InboundHandler(session_factory, settings), hostname=host or settings.mail_listen_host,
                      port=port or settings.mail_listen_port, data_size_limit=settings.mail_max_bytes,
                      enable_SMTPUTF8=True, decode_data=False, ident="clm mail")
