"""`clm journeys ...`: list, import and export definitions, activate and pause."""

from __future__ import annotations

import json
from pathlib import Path

import typer

journeys_app = typer.Typer(help="Journeys: list, import/export definitions, activate, pause.", no_args_is_help=True)


def _session():
    from clm.config import get_settings
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return for_writing(make_session_factory(engine)())


def _fail(exc: Exception) -> None:
    from clm.lib.errors import FieldError

    text = f"{exc.field}: {exc.message}" if isinstance(exc, FieldError) and exc.field else str(exc)
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(1)


@journeys_app.command("list")
def journeys_list() -> None:
    """Every journey with its state, version, trigger and counts."""
    from rich.console import Console
    from rich.table import Table

    from clm.journeys import service

    table = Table("id", "name", "state", "version", "trigger", "entered", "open", "converted")
    with _session() as session:
        for j in service.list_journeys(session):
            counts = service.summary(session, j.id)
            table.add_row(str(j.id), j.name, j.state, str(j.version), j.trigger_type, f"{counts['entered']:,}",
                          f"{counts['open']:,}", f"{counts['converted']:,}")
    Console().print(table)


@journeys_app.command("import")
def journeys_import(path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JSON file from `export`.")) -> None:
    """Create a draft from an exported journey (a new version when a journey has that name)."""
    from clm.journeys import service
    from clm.lib.errors import FieldError, NotFound

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {path} is not JSON: {exc}", err=True)
        raise typer.Exit(1) from None
    with _session() as session:
        try:
            journey = service.import_journey(session, document)
        except (FieldError, NotFound) as exc:
            _fail(exc)
        session.commit()
        typer.echo(f"journey {journey.id} ({journey.name}) is at version {journey.version}, {journey.state}")


@journeys_app.command("export")
def journeys_export(journey: str = typer.Argument(..., help="The journey's id or name."),
                    output: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout.")) -> None:
    """The journey's current definition as JSON (what `import` takes)."""
    from clm.journeys import service
    from clm.lib.errors import NotFound

    with _session() as session:
        try:
            document = service.export(session, service.find_journey(session, journey).id)
        except NotFound as exc:
            _fail(exc)
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


def _change(journey: str, action: str) -> None:
    from clm.config import get_settings
    from clm.journeys import service
    from clm.lib.errors import FieldError, NotFound

    with _session() as session:
        try:
            found = service.find_journey(session, journey)
            if action == "activate":
                changed = service.activate(session, found.id, timezone=get_settings().timezone)
            else:
                changed = {"pause": service.pause, "resume": service.resume}[action](session, found.id)
        except (FieldError, NotFound) as exc:
            _fail(exc)
        session.commit()
        typer.echo(f"journey {changed.id} ({changed.name}) is {changed.state}")


@journeys_app.command("activate")
def journeys_activate(journey: str = typer.Argument(..., help="The journey's id or name.")) -> None:
    """Let customers in (a paused journey resumes)."""
    _change(journey, "activate")


@journeys_app.command("pause")
def journeys_pause(journey: str = typer.Argument(..., help="The journey's id or name.")) -> None:
    """Hold every customer whose step comes due until `activate` or `resume`."""
    _change(journey, "pause")


@journeys_app.command("resume")
def journeys_resume(journey: str = typer.Argument(..., help="The journey's id or name.")) -> None:
    """Let held customers go on."""
    _change(journey, "resume")


def _mount_playbook() -> None:
    from clm.journeys.playbook_cli import playbook_app

    journeys_app.add_typer(playbook_app, name="playbook")


_mount_playbook()
