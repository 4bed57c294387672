"""The `clm` command line. Each capability adds a command group here."""

from __future__ import annotations

import typer

from clm.access.cli import users_app
from clm.analytics.cli import analytics_app
from clm.demo.cli import demo
from clm.imports.cli import import_app
from clm.jobs.cli import jobs_app
from clm.journeys.cli import journeys_app
from clm.lifecycle.cli import lifecycle_app
from clm.loyalty.cli import loyalty_app
from clm.sales.cli import sales_app
from clm.service.cli import service_app
from clm.service.mail.cli import mail_app
from clm.worker.cli import worker

app = typer.Typer(help="clm: customer lifecycle management.", no_args_is_help=True, rich_markup_mode="rich")
db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for the native API (/api/v1).", no_args_is_help=True)
write_keys_app = typer.Typer(help="Write keys for the Segment-compatible tracking API (/v1).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(write_keys_app, name="write-keys")
app.add_typer(import_app, name="import")
app.add_typer(lifecycle_app, name="lifecycle")
app.add_typer(loyalty_app, name="loyalty")
app.add_typer(sales_app, name="sales")
app.add_typer(service_app, name="service")
app.add_typer(mail_app, name="mail")
app.add_typer(analytics_app, name="analytics")
app.command("worker")(worker)
app.add_typer(jobs_app, name="jobs")
app.add_typer(journeys_app, name="journeys")
app.add_typer(users_app, name="users")
app.command("demo")(demo)


def _engine():
    from clm.config import get_settings
    from clm.db.engine import make_engine

    return make_engine(get_settings().database_url)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from clm.db.migrate import current, upgrade

    engine = _engine()
    upgrade(engine, revision)
    typer.echo(f"database at revision {current(engine)}")


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="Who or what uses the key, e.g. 'shop website'."),
    scope: list[str] = typer.Option(
        None, "--scope", help="A scope to grant (repeatable): customers:read, customers:write, events:read, "
        "orders:read, products:read, admin. Default: every read scope."
    ),
) -> None:
    """Make an API key and print it once; only its hash is stored."""
    from clm.access.keys import READ_ALL, create_api_key
    from clm.db.engine import make_session_factory
    from clm.db.migrate import upgrade

    engine = _engine()
    upgrade(engine)
    with make_session_factory(engine)() as session:
        try:
            row, secret = create_api_key(session, name, scope or READ_ALL)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scope") from None
        session.commit()
        typer.echo(f"API key {row.id} ({', '.join(row.scopes)}):\n{secret}\nStore it now: it is not shown again.")


@write_keys_app.command("create")
def write_keys_create(name: str = typer.Option(..., "--name", help="The source, e.g. 'website' or 'pos'.")) -> None:
    """Make a write key for a tracking source and print it once."""
    from clm.access.keys import create_write_key
    from clm.db.engine import make_session_factory
    from clm.db.migrate import upgrade

    engine = _engine()
    upgrade(engine)
    with make_session_factory(engine)() as session:
        row, secret = create_write_key(session, name)
        session.commit()
        typer.echo(f"write key {row.id} for {name!r}:\n{secret}\nStore it now: it is not shown again.")


@app.command("config")
def show_config(markdown: bool = typer.Option(False, help="Print the reference table of every setting.")) -> None:
    """Show the settings in force (secrets hidden), or document them all with --markdown."""
    from clm.config import describe, get_settings

    if markdown:
        typer.echo("| variable | default | meaning |\n| --- | --- | --- |")
        for var, default, text in describe():
            typer.echo(f"| `{var}` | `{default}` | {text} |" if default else f"| `{var}` | | {text} |")
        return
    from sqlalchemy.engine import make_url

    for name, value in get_settings().model_dump().items():
        shown = "********" if "secret" in name or "password" in name else value
        if name == "database_url":
            shown = make_url(value).render_as_string(hide_password=True)
        typer.echo(f"CLM_{name.upper()}={shown}")


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (CLM_HOST, default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (CLM_PORT, default 8000)."),
    workers: int = typer.Option(None, help="Server processes (CLM_WORKERS, default 1)."),
    no_worker: bool = typer.Option(False, "--no-worker", help="Do not run the worker in-process (run `clm worker`)."),
) -> None:
    """Upgrade the database, then serve the API (and later the dashboard), with a worker in-process."""
    import os
    import sys

    import uvicorn

    from clm.config import get_settings
    from clm.db.migrate import upgrade

    settings = get_settings()
    engine = _engine()
    upgrade(engine)
    if not no_worker:
        from clm.db.engine import make_session_factory
        from clm.worker.loop import Worker
        from clm.worker.steps import build_steps

        Worker(make_session_factory(engine), build_steps(settings), settings.worker_poll_seconds).start_thread()
    processes = workers or settings.workers
    writer = None
    if processes > 1 and engine.dialect.name == "sqlite":
        # One writer process stores what every server process accepts (clm/tracking/writer_process.py).
        from clm.tracking.writer_process import WriterProcess

        writer = WriterProcess(settings.database_url)
        writer.start()
        os.environ["CLM_INGEST_WRITER_SOCKET"] = writer.socket_path
        os.environ["CLM_INGEST_WRITER_SECRET"] = writer.key.hex()
    # Threads that wait on SQLite or the network take the GIL back sooner than the default 5 ms allows.
    sys.setswitchinterval(0.0005)
    try:
        uvicorn.run("clm.web.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
                    workers=processes, log_level=settings.log_level, access_log=False)
    finally:
        if writer is not None:
            writer.stop()


if __name__ == "__main__":
    app()
