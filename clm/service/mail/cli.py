"""`clm mail ...`: the service desk's inbound mail: the SMTP listener, IMAP polling, a pipe, the quarantine."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

mail_app = typer.Typer(help="Inbound email for the service desk: listen (SMTP), poll (IMAP), import, quarantine.",
                       no_args_is_help=True)


def _factory():
    from clm.config import get_settings
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return make_session_factory(engine)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@mail_app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (default CLM_MAIL_LISTEN_HOST)."),
    port: int = typer.Option(None, help="Port to listen on (default CLM_MAIL_LISTEN_PORT)."),
) -> None:
    """Run the inbound SMTP listener until stopped (Ctrl-C): each mail is stored before it is accepted."""
    import signal
    import threading

    from clm.config import get_settings
    from clm.service.mail.listener import controller

    settings = get_settings()
    listener = controller(_factory(), settings, host=host, port=port)
    listener.start()
    typer.echo(f"clm mail: listening on {listener.hostname}:{listener.port}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()


@mail_app.command()
def poll(
    every: float = typer.Option(0, help="Poll again every this many seconds (0: once, then exit)."),
) -> None:
    """Read unseen mail from the IMAP mailbox of CLM_MAIL_IMAP_URL into the desk."""
    from clm.config import get_settings
    from clm.service.mail.imap import ImapConfig
    from clm.service.mail.imap import poll as poll_once

    settings = get_settings()
    if settings.mail_imap_url is None:
        _fail("set CLM_MAIL_IMAP_URL (imaps://user:pass@host:993/INBOX)")
    try:
        config = ImapConfig.from_url(settings.mail_imap_url.get_secret_value())
    except ValueError as exc:
        _fail(str(exc))
    factory = _factory()
    while True:
        try:
            result = poll_once(config, factory, settings)
        except Exception as exc:  # the server is down, the login refused: say so, try again later
            typer.echo(f"error: cannot read {config.host}:{config.port}/{config.mailbox}: {exc}", err=True)
            if not every:
                raise typer.Exit(1) from None
        else:
            for outcome in result.outcomes:
                typer.echo(f"{outcome.status}\t{outcome.ticket_number or ''}\t{outcome.reason or ''}")
            if result.failed:
                typer.echo(f"{result.failed} mail(s) left unseen for the next poll", err=True)
        if not every:
            return
        time.sleep(every)


@mail_app.command(name="import")
def import_mail(path: str = typer.Argument(..., help="An .eml file, or - to read one mail from standard input "
                                                     "(a mail server's pipe).")) -> None:
    """Store one mail given as a file or on standard input (e.g. an /etc/aliases pipe)."""
    from clm.config import get_settings
    from clm.db.engine import for_writing
    from clm.service.mail.inbound import accept

    raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    with _factory()() as session:
        for_writing(session)
        outcome = accept(session, raw, source="cli", settings=get_settings())
        session.commit()
    typer.echo(f"{outcome.status}\t{outcome.ticket_number or ''}\t{outcome.reason or ''}".rstrip())


@mail_app.command()
def quarantine(limit: int = typer.Option(50, help="How many, newest first.")) -> None:
    """List mail held back (malformed or machine mail) with why."""
    import sqlalchemy as sa

    from clm.service.mail.models import Quarantined

    with _factory()() as session:
        rows = list(session.scalars(sa.select(Quarantined).order_by(Quarantined.id.desc()).limit(limit)))
    if not rows:
        typer.echo("the quarantine is empty")
    for r in rows:
        released = f"released {r.released_at:%Y-%m-%d}" if r.released_at else ""
        typer.echo(f"{r.id}\t{r.received_at:%Y-%m-%d %H:%M}\t{r.kind}\t{r.sender or '-'}\t{r.reason}\t{released}"
                   .rstrip())


@mail_app.command()
def release(quarantine_id: int = typer.Argument(..., help="The id `clm mail quarantine` shows.")) -> None:
    """Let a held mail in as a customer's message after all (it must be readable)."""
    from clm.config import get_settings
    from clm.db.engine import for_writing
    from clm.lib.errors import FieldError, NotFound
    from clm.service.mail.inbound import release as release_mail

    with _factory()() as session:
        for_writing(session)
        try:
            outcome = release_mail(session, quarantine_id, settings=get_settings())
        except (FieldError, NotFound) as exc:
            _fail(str(getattr(exc, "message", exc)))
        session.commit()
    typer.echo(f"{outcome.status}\t{outcome.ticket_number or ''}")
