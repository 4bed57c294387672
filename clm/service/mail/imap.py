"""`clm mail poll`: read new mail from an IMAP mailbox (CLM_MAIL_IMAP_URL) into the desk.

URL forms: ``imaps://user:pass@host:993/INBOX`` (TLS), ``imap://user:pass@host:143/INBOX?starttls=1``;
``verify=0`` for a test server with a self-signed certificate; user and password percent-decoded (a
non-ASCII one logs in with AUTHENTICATE PLAIN in UTF-8).

Each unseen message is fetched with BODY.PEEK[] (which leaves it unseen), stored or quarantined and
committed, and only then flagged \\Seen (and, with ``delete=1`` in the URL, deleted). A poller that dies
between the commit and the flag fetches the mail again next time, and the desk stores it once (the mail's
Message-ID, or the quarantine's digest of its bytes). One mail that cannot be stored is left unseen for
the next poll and does not stop the others.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.service.mail.inbound import Outcome, accept

log = logging.getLogger("clm.mail")


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    username: str
    password: str
    mailbox: str = "INBOX"
    ssl: bool = False
    starttls: bool = False
    verify: bool = True
    delete: bool = False
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> ImapConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps"):
            raise ValueError("CLM_MAIL_IMAP_URL must start with imap:// or imaps://")
        if not parts.hostname or not parts.username:
            raise ValueError("CLM_MAIL_IMAP_URL needs a user and a host: imaps://user:pass@host:993/INBOX")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        secure = parts.scheme == "imaps"
        yes = ("1", "true", "yes")
        return cls(host=parts.hostname, port=parts.port or (993 if secure else 143), username=unquote(parts.username),
                   password=unquote(parts.password or ""), mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
                   ssl=secure, starttls=query.get("starttls", "0").lower() in yes,
                   verify=query.get("verify", "1").lower() not in ("0", "false", "no"),
                   delete=query.get("delete", "0").lower() in yes, timeout=float(query.get("timeout", 30)))

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def connect(self) -> imaplib.IMAP4:
        if self.ssl:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self.tls_context(),
                                                      timeout=self.timeout)
        else:
            client = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                client.starttls(ssl_context=self.tls_context())
        if self.username.isascii() and self.password.isascii():
            client.login(self.username, self.password)
        else:
            # imaplib's LOGIN sends ASCII only; AUTHENTICATE PLAIN carries UTF-8 (RFC 4616), e.g. "mậtkhẩu".
            token = b"\0" + self.username.encode() + b"\0" + self.password.encode()
            client.authenticate("PLAIN", lambda _challenge: token)
        return client


@dataclass
class PollResult:
    outcomes: list[Outcome]
    failed: int = 0


def _raw(fetched) -> bytes | None:
    for item in fetched or []:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def poll(config: ImapConfig, session_factory: Callable[[], Session], settings, *, limit: int = 500) -> PollResult:
    """Fetch the mailbox's unseen mail into the desk once; returns what became of each."""
    result = PollResult([])
    client = config.connect()
    try:
        status, _ = client.select(_quoted(config.mailbox))
        if status != "OK":
            raise RuntimeError(f"the IMAP server has no mailbox {config.mailbox!r}")
        status, data = client.uid("SEARCH", None, "UNSEEN")
        uids = (data[0] or b"").split() if status == "OK" and data else []
        for uid in uids[:limit]:
            status, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = _raw(fetched) if status == "OK" else None
            if raw is None:
                result.failed += 1
                continue
            try:
                with session_factory() as session:
                    for_writing(session)
                    outcome = accept(session, raw, source="imap", settings=settings)
                    session.commit()
            except Exception:  # left unseen: the next poll tries again
                log.exception("could not store IMAP message %s", uid.decode())
                result.failed += 1
                continue
            result.outcomes.append(outcome)
            client.uid("STORE", uid, "+FLAGS", "(\\Seen \\Deleted)" if config.delete else "(\\Seen)")
        if config.delete and result.outcomes:
            client.expunge()
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return result


def _quoted(mailbox: str) -> str:
    return mailbox if re.fullmatch(r"[A-Za-z0-9_./-]+", mailbox) else '"' + mailbox.replace('"', '\\"') + '"'
