"""`clm mail poll`: unseen mail from an IMAP mailbox becomes tickets once, even when the poll is cut short."""

from __future__ import annotations

import imaplib
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from clm.service.mail.imap import ImapConfig, poll
from clm.service.models import Ticket
from tests.service.mail.conftest import sample
from tests.service.mail.imap_server import Mailbox, start


@pytest.fixture
def imap():
    box = Mailbox()
    server, port = start(box)
    yield box, ImapConfig.from_url(f"imap://{quote(box.user)}:{quote(box.password)}@127.0.0.1:{port}/INBOX")
    server.shutdown()
    server.server_close()


def count(db, model) -> int:
    db.expire_all()
    return db.scalar(sa.select(sa.func.count()).select_from(model))


def test_unseen_mail_is_stored_then_flagged_seen_and_not_read_again(db, session_factory, mail_settings, mailbox,
                                                                     imap):
    box, config = imap
    db.commit()
    for name in ("outlook_windows1258.eml", "gmail_utf8_attachment.eml", "x_autoreply_vacation.eml"):
        box.add(sample(name))
    result = poll(config, session_factory, mail_settings)
    assert [o.status for o in result.outcomes] == ["stored", "stored", "automatic"]
    assert all("\\Seen" in m.flags for m in box.messages)
    assert count(db, Ticket) == 2
    again = poll(config, session_factory, mail_settings)
    assert again.outcomes == [] and box.fetched == [1, 2, 3]


def test_a_poll_cut_between_the_commit_and_the_flag_stores_the_mail_once(db, session_factory, mail_settings, mailbox,
                                                                         imap):
    box, config = imap
    db.commit()
    box.add(sample("apple_mail_inline_image.eml"))
    box.drop_on_store = 1
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        poll(config, session_factory, mail_settings)
    assert count(db, Ticket) == 1 and "\\Seen" not in box.messages[0].flags
    result = poll(config, session_factory, mail_settings)
    assert [o.status for o in result.outcomes] == ["duplicate"]
    assert count(db, Ticket) == 1 and "\\Seen" in box.messages[0].flags


def test_delete_mode_removes_what_was_stored(db, session_factory, mail_settings, mailbox, imap):
    box, config = imap
    db.commit()
    box.add(sample("forwarded_chain.eml"))
    deleting = ImapConfig(**{**config.__dict__, "delete": True})
    poll(deleting, session_factory, mail_settings)
    assert box.messages == []


def test_a_wrong_password_is_an_error_naming_the_login():
    box = Mailbox()
    server, port = start(box)
    try:
        config = ImapConfig.from_url(f"imap://{quote(box.user)}:wrong@127.0.0.1:{port}/INBOX")
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            poll(config, lambda: None, None)
    finally:
        server.shutdown()
        server.server_close()


def test_imap_urls_read_like_the_smtp_ones():
    config = ImapConfig.from_url("imaps://h%C3%B4tro%40shop.vn:m%E1%BA%ADt@mail.shop.vn/Support%20desk?delete=1")
    assert (config.host, config.port, config.ssl) == ("mail.shop.vn", 993, True)
    assert (config.username, config.password, config.mailbox, config.delete) == (
        "hôtro@shop.vn", "mật", "Support desk", True)
    with pytest.raises(ValueError, match="imap:// or imaps://"):
        ImapConfig.from_url("pop3://x@y")
