"""`clm analytics ...`: refresh every customer's scores, and compare the CLV models on the shop's orders."""

from __future__ import annotations

import time
from datetime import datetime

import typer

analytics_app = typer.Typer(help="Customer analytics: RFM, CLV and churn scores; model validation.",
                            no_args_is_help=True)
MODEL_CHOICES = ("auto", "bgnbd", "pnbd", "mbgnbd")


def _session():
    from clm.config import get_settings
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return for_writing(make_session_factory(engine)())


def _when(at: datetime | None) -> datetime:
    from clm.lib.clock import as_utc, utcnow

    return as_utc(at) if at else utcnow()


def describe_run(run) -> list[str]:
    """The lines `refresh` prints about a finished run (also used by `clm demo`)."""
    from clm.analytics.refresh import MODEL_NAMES

    lines = []
    if run.status == "ok":
        params = ", ".join(f"{k}={v:.4g}" for k, v in run.params.items())
        lines.append(f"model {MODEL_NAMES.get(run.model, run.model)} ({params}); log-likelihood {run.log_likelihood:,.1f}")
        lines.append(f"scored {run.customers_scored:,} of {run.customers_total:,} customers "
                     f"({run.repeat_buyers:,} repeat buyers); the others have no orders in {run.currency}")
    else:
        lines.append(f"not enough data ({run.reason}): {run.buyers:,} buyers, {run.repeat_buyers:,} repeat buyers; "
                     f"{run.customers_total:,} customers marked not_enough_data")
    rows = run.holdout.get("rows") if run.holdout else None
    if rows:
        lines.append(f"holdout {run.holdout['days'] // 7} weeks: " + comparison_line(rows))
    lines += [f"note: {n}" for n in run.notes]
    return lines


def comparison_line(rows: list[dict]) -> str:
    """"BG/NBD MAE 0.412 · Pareto/NBD MAE 0.415 · ... (best: BG/NBD)": rows best first."""
    from clm.analytics.refresh import MODEL_NAMES

    parts = [f"{MODEL_NAMES.get(r['model'], r['model'])} MAE {r['mae']:.4f} (predicted {r['predicted_total']:,.0f} "
             f"vs actual {r['actual_total']:,.0f})" for r in rows]
    return " · ".join(parts) + f" → best: {MODEL_NAMES.get(rows[0]['model'], rows[0]['model'])}"


@analytics_app.command()
def refresh(
    model: str = typer.Option("auto", "--model", help="auto (best by holdout error when the history allows), "
                              "bgnbd, pnbd or mbgnbd."),
    at: datetime = typer.Option(None, "--at", help="Score as of this time (default: now)."),
) -> None:
    """Compute every customer's RFM, P(alive), expected purchases (90 days), 12-month CLV and churn risk."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from clm.analytics.refresh import refresh as run_refresh
    from clm.config import get_settings
    from clm.db.engine import for_writing

    if model not in MODEL_CHOICES:
        raise typer.BadParameter(f"choose one of {', '.join(MODEL_CHOICES)}", param_hint="--model")
    settings = get_settings()
    started = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), transient=True)
    with _session() as session, progress:
        tasks = {"read": progress.add_task("reading orders", total=None),
                 "write": progress.add_task("writing scores", total=None)}

        def chunk(phase: str, done: int, total: int) -> None:
            if phase == "write":
                session.commit()
                for_writing(session)
            else:
                progress.update(tasks["write"], description="fitting, then writing scores")
            progress.update(tasks[phase], completed=done, total=total)

        run = run_refresh(session, _when(at), currency=settings.default_currency, timezone=settings.timezone,
                          model=model, on_chunk=chunk)
        session.commit()
    for line in describe_run(run):
        typer.echo(line)
    typer.echo(f"run {run.id} as of {run.as_of:%Y-%m-%d %H:%M} UTC in {time.perf_counter() - started:.1f} s")


@analytics_app.command()
def validate(
    holdout: str = typer.Option("26w", "--holdout", help="Length of the holdout period: 26w, 180d, 6m."),
    at: datetime = typer.Option(None, "--at", help="End of the observation (default: now)."),
) -> None:
    """Fit BG/NBD, Pareto/NBD and MBG/NBD before the holdout and compare their predictions of it."""
    from clm.analytics.refresh import validate as run_validate
    from clm.config import get_settings

    settings = get_settings()
    with _session() as session:
        try:
            rows = run_validate(session, holdout, _when(at), currency=settings.default_currency,
                                timezone=settings.timezone)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(f"holdout {holdout}, {rows[0]['n_customers']:,} customers in the calibration period: "
               + comparison_line(rows))
