"""`clm demo`: build a realistic business in a fresh SQLite file, print the login, serve it."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Dataset(StrEnum):
    generated = "generated"
    cdnow = "cdnow"


CDNOW_CUSTOMERS = 23_570


def demo(
    customers: int = typer.Option(20_000, "--customers", "-n", min=1, help="How many customers to generate."),
    seed: int = typer.Option(42, "--seed", help="The same seed builds the same shop."),
    dataset: Dataset = typer.Option(Dataset.generated, "--dataset", help="generated: a Vietnamese retail shop; "
                                    "cdnow: the real CDNOW purchase log (1997-1998, USD)."),
    db: Path = typer.Option(Path("clm-demo.db"), "--db", help="The SQLite file to build (replaced if an earlier demo)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --db even if it was not made by `clm demo`."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the demo when it is built (like `clm serve`)."),
    host: str = typer.Option(None, help="Address to serve on (CLM_HOST, default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to serve on (CLM_PORT, default 8000)."),
    password: str = typer.Option(None, "--password", help="The admin's password (default: a random one, printed)."),
) -> None:
    """Build a demo business in a fresh SQLite file through the real ingestion path, then serve it."""
    from clm.config import get_settings
    from clm.db.engine import make_session_factory
    from clm.demo import build
    from clm.demo.load import load_stories

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        engine = build.fresh_database(db, force)
    except build.DemoDatabaseError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    session_factory = make_session_factory(engine)
    settings = get_settings()
    if dataset is Dataset.cdnow:
        from clm.demo import cdnow

        total, stories, label = CDNOW_CUSTOMERS, cdnow.stories(), "loading CDNOW"
    else:
        from clm.demo.generate import ShopSpec
        from clm.demo.generate import stories as generated

        spec = ShopSpec(customers=customers, seed=seed)
        total, stories, label = customers, generated(spec), "building the shop"
        if not spec.with_browsing:
            err.print(f"{customers:,} customers: browsing-only visits are left out to keep the build short "
                      "(see docs/demo.md)")
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("customers"),
                        TextColumn("{task.fields[messages]:>12,} messages  {task.fields[rate]:>7,.0f}/s"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
    with progress:
        task = progress.add_task(label, total=total, messages=0, rate=0.0)
        stats = load_stories(session_factory, stories, currency=settings.default_currency,
                             region=settings.default_region,
                             on_progress=lambda s: progress.update(task, completed=s.customers, messages=s.messages,
                                                                   rate=s.messages_per_s))
    if stats.rejected:
        first = stats.rejected[0]
        err.print(f"[yellow]warning:[/yellow] {len(stats.rejected):,} messages were rejected, e.g. "
                  f"{first.message_id}: {first.field}: {first.message}")
    summary = build.summarise(session_factory)
    out.print(f"{db}: {summary} from {stats.messages:,} messages in {stats.seconds:.0f} s "
              f"({stats.messages_per_s:,.0f} messages/s)", soft_wrap=True)
    with err.status("lifecycle: computing every customer's stage"):
        moved = build.recompute_lifecycle(session_factory)
    if moved is not None:
        out.print(f"lifecycle stages: {build.stage_counts(session_factory)}", soft_wrap=True)
    with err.status("analytics: scoring every customer (RFM, P(alive), CLV)"):
        run = build.refresh_scores(session_factory, settings.default_currency, settings.timezone)
    from clm.analytics.cli import describe_run

    out.print("analytics: " + "; ".join(describe_run(run)[:2]), soft_wrap=True)
    with err.status("segments: installing the ready-made segments"):
        from clm.segments.ready import install_for_demo

        out.print(f"segments: {install_for_demo(session_factory, settings.timezone)} ready-made segments installed")
    with err.status("channels: message templates and a past broadcast"):
        from clm.channels.demo import install_for_demo as install_messaging

        out.print(f"channels: {install_messaging(session_factory, settings)}")
    login = build.create_login(session_factory, password)
    engine.dispose()
    url = f"http://{host or settings.host}:{port or settings.port}"
    out.print(f"\nLog in at {url} as [bold]{login.email}[/bold] with password [bold]{login.password}[/bold]\n"
              f"Tracking write key (/v1, basic auth user): {login.write_key}\n"
              f"API key (/api/v1, Bearer): {login.api_key}", soft_wrap=True)
    if not serve:
        out.print(f"Serve it later with: CLM_DATABASE_URL=sqlite:///{db} clm serve", soft_wrap=True)
        return
    os.environ["CLM_DATABASE_URL"] = f"sqlite:///{db.resolve()}"  # for the server's create_app()
    get_settings.cache_clear()
    from clm.cli import serve as serve_command

    serve_command(host=host, port=port, workers=None, no_worker=False)
