"""`clm jobs ...`: look at the queue, and re-queue dead jobs."""

from __future__ import annotations

import typer

jobs_app = typer.Typer(help="The durable job queue: list, stats, retry dead jobs.", no_args_is_help=True)


def _session():
    from clm.config import get_settings
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return for_writing(make_session_factory(engine)())


@jobs_app.command("list")
def jobs_list(
    state: str = typer.Option(None, "--state", help="Only jobs in this state: available, running, retryable, "
                              "completed, dead, cancelled."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many, newest first."),
) -> None:
    """List jobs, newest first, with each one's last error."""
    import sqlalchemy as sa
    from rich.console import Console
    from rich.table import Table

    from clm.jobs.models import STATES, Job

    if state is not None and state not in STATES:
        raise typer.BadParameter(f"choose one of {', '.join(STATES)}", param_hint="--state")
    with _session() as session:
        query = sa.select(Job).order_by(Job.id.desc()).limit(limit)
        if state:
            query = query.where(Job.state == state)
        table = Table("id", "kind", "queue", "state", "attempt", "due", "last error")
        for job in session.scalars(query):
            error = job.errors[-1]["error"] if job.errors else ""
            table.add_row(str(job.id), job.kind, job.queue, job.state, f"{job.attempt}/{job.max_attempts}",
                          job.scheduled_at.isoformat(timespec="seconds"), error[:80])
        Console().print(table)


@jobs_app.command("retry")
def jobs_retry(job_id: int = typer.Argument(..., help="The id of a dead or cancelled job.")) -> None:
    """Re-queue a dead or cancelled job: it is due now, with one more attempt."""
    from clm.jobs.queue import retry_dead
    from clm.lib.errors import FieldError, NotFound

    with _session() as session:
        try:
            job = retry_dead(session, job_id)
        except (FieldError, NotFound) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        session.commit()
        typer.echo(f"job {job.id} ({job.kind}) is queued again")


@jobs_app.command("stats")
def jobs_stats() -> None:
    """Jobs per queue and state."""
    from rich.console import Console
    from rich.table import Table

    from clm.jobs.queue import stats

    with _session() as session:
        counts = stats(session)
    table = Table("queue", "state", "jobs")
    for (queue, state), count in sorted(counts.items()):
        table.add_row(queue, state, f"{count:,}")
    Console().print(table)
