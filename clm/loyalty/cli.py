"""`clm loyalty ...`: verify the ledger against the balances, run the time-driven sweep."""

from __future__ import annotations

from datetime import datetime

import typer

loyalty_app = typer.Typer(help="The loyalty program: verify the points ledger, run expiry and tier reviews.",
                          no_args_is_help=True)


def _session():
    from clm.config import get_settings
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return for_writing(make_session_factory(engine)())


@loyalty_app.command()
def verify(limit: int = typer.Option(50, help="List at most this many differences.")) -> None:
    """Recompute every member's balances from the ledger and list any difference (exit 1 when there is one)."""
    from clm.loyalty.verify import verify as check

    with _session() as session:
        differences = check(session)
    if not differences:
        typer.echo("ledger verified: every balance matches its entries and lots")
        return
    for diff in differences[:limit]:
        typer.echo(str(diff))
    more = len(differences) - limit
    typer.echo(f"{len(differences)} differences" + (f" ({more} not shown)" if more > 0 else ""), err=True)
    raise typer.Exit(1)


@loyalty_app.command()
def sweep(at: datetime = typer.Option(None, "--at", help="Run as of this time (default: now).")) -> None:
    """Release points past their return window, expire lots, review tiers and reward referrals now."""
    from clm.db.engine import for_writing
    from clm.lib.clock import as_utc, utcnow
    from clm.loyalty.sweep import sweep as run

    with _session() as session:
        def chunk() -> None:
            session.commit()
            for_writing(session)

        done = run(session, as_utc(at) if at else utcnow(), on_chunk=chunk)
        session.commit()
    typer.echo(f"{done} members brought up to date")
