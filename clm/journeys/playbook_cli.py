"""`clm journeys playbook list|install`: the lifecycle playbook's ready journeys."""

from __future__ import annotations

import typer

playbook_app = typer.Typer(help="The lifecycle playbook: ready journeys with Vietnamese and English templates.",
                           no_args_is_help=True)


@playbook_app.command("list")
def playbook_list() -> None:
    """Every playbook journey, its trigger and whether it is installed."""
    from rich.console import Console
    from rich.table import Table

    from clm.journeys import playbook
    from clm.journeys.cli import _session

    table = Table("key", "journey", "trigger", "templates", "installed")
    with _session() as session:
        installed = playbook.installed_journeys(session)
        for play in playbook.plays():
            journey = installed.get(play.key)
            table.add_row(play.key, play.title["en"], play.definition["trigger"]["type"],
                          str(len(play.templates)), f"#{journey.id} {journey.state}" if journey else "no")
    Console().print(table)


@playbook_app.command("install")
def playbook_install(
    names: list[str] = typer.Argument(None, help="Playbook journeys by key (see `list`)."),
    all_: bool = typer.Option(False, "--all", help="Install every playbook journey."),
    activate: bool = typer.Option(False, "--activate", help="Activate what is installed now (default: drafts)."),
) -> None:
    """Install playbook journeys and their templates. Installing again adds nothing: templates and journeys
    that exist (by key and name) are kept as they are."""
    from clm.config import get_settings
    from clm.journeys import playbook
    from clm.journeys.cli import _fail, _session
    from clm.lib.errors import FieldError

    if bool(names) == all_:
        typer.echo("error: name the journeys to install (see `clm journeys playbook list`) or give --all", err=True)
        raise typer.Exit(1)
    with _session() as session:
        try:
            results = playbook.install(session, None if all_ else names, activate=activate,
                                       timezone=get_settings().timezone)
        except FieldError as exc:
            _fail(exc)
        session.commit()
    for r in results:
        if r.status == "failed":
            typer.echo(f"{r.key}: failed: {r.error}", err=True)
            continue
        made = f", templates created: {', '.join(r.templates_created)}" if r.templates_created else ""
        typer.echo(f"{r.key}: {r.status} (journey {r.journey_id}, {r.state}){made}")
        if r.note:
            typer.echo(f"  note: {r.note}")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)
