"""`clm demo`: build a realistic business in a fresh SQLite file, print the login, serve it."""

from __future__ import annotations

import os
from datetime import timedelta
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
JOURNEY_DAYS = 7  # the playbook is installed this many days before the end of the history
JOURNEY_CUSTOMERS = 200_000  # above this the replayed days' messages would not fit in memory comfortably


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
    journey_days: int = typer.Option(None, "--journey-days", min=0, max=365,
                                     help="Run the lifecycle playbook over the last N days of the history (default: "
                                     f"{JOURNEY_DAYS}, or 0 above {JOURNEY_CUSTOMERS:,} customers and for cdnow)."),
    loyalty_months: int = typer.Option(3, "--loyalty-months", min=0, max=36,
                                       help="Run the loyalty program over the last N months of the history "
                                       "(0: no program; generated shop only)."),
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
    replay = None
    if dataset is Dataset.cdnow:
        from clm.demo import cdnow

        total, stories, label = CDNOW_CUSTOMERS, cdnow.stories(), "loading CDNOW"
    else:
        from clm.demo.generate import ShopSpec
        from clm.demo.generate import stories as generated

        spec = ShopSpec(customers=customers, seed=seed)
        total, stories, label = customers, generated(spec), "building the shop"
        if journey_days is None:
            journey_days = JOURNEY_DAYS if customers <= JOURNEY_CUSTOMERS else 0
        if journey_days:
            from clm.demo import journeys

            replay = journeys.Replay(start=spec.now - timedelta(days=journey_days), end=spec.now)
            stories = journeys.hold_back(stories, replay.start, replay)
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
    if replay is not None:
        _replay_playbook(session_factory, replay, settings, seed, out, err)
    summary = build.summarise(session_factory)
    out.print(f"{db}: {summary} from {stats.messages + (replay.messages if replay else 0):,} messages in "
              f"{stats.seconds + (replay.seconds if replay else 0):.0f} s", soft_wrap=True)
    if replay is None:
        with err.status("lifecycle: computing every customer's stage"):
            build.recompute_lifecycle(session_factory)
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
    if loyalty_months and dataset is Dataset.generated:
        with err.status(f"loyalty: running the program over the last {loyalty_months} months"):
            from clm.loyalty.demo import install_for_demo as install_loyalty

            shop = install_loyalty(session_factory, spec.now, seed, loyalty_months)
        out.print(f"loyalty: {shop.members:,} members, {shop.orders:,} orders earned points, {shop.redemptions:,} "
                  f"vouchers redeemed, {shop.refunds:,} refunds reversed, in {shop.seconds:.0f} s", soft_wrap=True)
    with err.status("sales: a sales team, leads and deals with history, the lead score"):
        from clm.sales.demo import install_for_demo as install_sales

        out.print(f"sales: {install_sales(session_factory, seed)}", soft_wrap=True)
    with err.status("service desk: agents, inboxes, past tickets and a live inbox"):
        from clm.service.demo import install_for_demo as install_service

        out.print(f"service desk: {install_service(session_factory, seed)}", soft_wrap=True)
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


def _replay_playbook(session_factory, replay, settings, seed: int, out: Console, err: Console) -> None:
    """The shop as it was `journey_days` ago: stages, scores and consents then; the playbook installed then;
    the days since replayed hour by hour with the worker (clm/demo/journeys.py)."""
    from clm.db.engine import for_writing
    from clm.demo import build, journeys

    with session_factory() as session:
        for_writing(session)
        journeys.grant_consents(session, seed)
        session.commit()
    with err.status(f"lifecycle and analytics as of {replay.start:%Y-%m-%d %H:%M} UTC"):
        build.recompute_lifecycle(session_factory, now=replay.start)
        build.refresh_scores(session_factory, settings.default_currency, settings.timezone, now=replay.start)
    journeys.install_playbook(session_factory, replay.start, settings.timezone)
    hours = int((replay.end - replay.start).total_seconds() // 3600)
    progress = Progress(TextColumn("journeys: replaying the last days"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("hours  {task.fields[steps]:>9,} steps  {task.fields[sent]:>8,} messages"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
    with progress:
        task = progress.add_task("replay", total=hours, steps=0, sent=0)
        journeys.run(session_factory, replay, settings, seed,
                     on_hour=lambda r: progress.update(task, completed=r.hours, steps=r.steps, sent=r.sent))
    out.print(f"journeys: the lifecycle playbook ran over the last {hours // 24} days ({replay.messages:,} messages "
              f"replayed, {replay.steps:,} journey steps, {replay.sent:,} messages sent) in {replay.seconds:.0f} s",
              soft_wrap=True)
    for line in journeys.report(session_factory):
        out.print(f"  {line}", soft_wrap=True)
