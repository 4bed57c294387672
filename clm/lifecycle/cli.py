"""`clm lifecycle ...`: check a rule file, sweep, recompute, and look at stages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

lifecycle_app = typer.Typer(help="Lifecycle stages: rules, sweep, recompute, counts.", no_args_is_help=True)


def _session():
    from clm.config import get_settings
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return for_writing(make_session_factory(engine)())


def _rules():
    from clm.lib.errors import FieldError
    from clm.lifecycle.rules import current_rules

    try:
        return current_rules()
    except FieldError as exc:
        typer.echo(f"error: the rule file is invalid: {exc}", err=True)
        raise typer.Exit(2) from None


def _when(at: datetime | None) -> datetime:
    from clm.lib.clock import as_utc, utcnow

    return as_utc(at) if at else utcnow()


@lifecycle_app.command("check-rules")
def check_rules(file: Path = typer.Argument(..., help="The rule file (TOML) to check.")) -> None:
    """Check a rule file; on success list its stages and rules in evaluation order."""
    from clm.lib.errors import FieldError
    from clm.lifecycle.rules import load_rules

    try:
        rules = load_rules(file)
    except FieldError as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{file}: {len(rules.stages)} stages, {len(rules.rules)} rules")
    typer.echo("stages: " + " -> ".join(s.key for s in rules.stages if s.funnel)
               + "".join(f", {s.key}" for s in rules.stages if not s.funnel))
    for i, rule in enumerate(rules.rules, 1):
        when = [f"{f} {c}" for f, c in rule.when.comparisons()]
        if rule.when.events:
            ev = rule.when.events
            when.append(f"events {ev.names} >= {ev.at_least}" + (f" in {ev.within_days} days" if ev.within_days else ""))
        source = f" from {', '.join(rule.from_)}" if rule.from_ else ""
        typer.echo(f"{i:>2}. {rule.name}: -> {rule.stage}{source}" + (f" when {' and '.join(when)}" if when else ""))


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn())


@lifecycle_app.command()
def sweep(at: datetime = typer.Option(None, "--at", help="Evaluate as of this time (default: now).")) -> None:
    """Move everyone whom time alone moves (at risk, churned)."""
    from clm.db.engine import for_writing
    from clm.lifecycle import service

    rules = _rules()
    with _session() as session, _progress() as progress:
        task = progress.add_task("stages", total=None)

        def chunk(done: int, total: int) -> None:
            session.commit()
            for_writing(session)
            progress.update(task, completed=done, total=total)

        moved = service.sweep(session, _when(at), rules, on_chunk=chunk)
        session.commit()
    typer.echo(f"moved {moved} customers")


@lifecycle_app.command()
def recompute(at: datetime = typer.Option(None, "--at", help="Evaluate as of this time (default: now).")) -> None:
    """Rebuild every customer's stats and stage from the facts (after changing the rule file)."""
    from clm.db.engine import for_writing
    from clm.lifecycle import service

    rules = _rules()
    with _session() as session, _progress() as progress:
        tasks = {"stats": progress.add_task("stats", total=None), "stages": progress.add_task("stages", total=None)}

        def chunk(phase: str, done: int, total: int) -> None:
            session.commit()
            for_writing(session)
            progress.update(tasks[phase], completed=done, total=total)

        rows, moved = service.recompute(session, _when(at), rules, on_chunk=chunk)
        session.commit()
    typer.echo(f"stats for {rows} customers; moved {moved} customers")


@lifecycle_app.command()
def stages(locale: str = typer.Option("vi", help="Language of the stage names (vi, en).")) -> None:
    """Customers per stage."""
    from clm.lifecycle.metrics import stage_counts, stage_names

    rules = _rules()
    with _session() as session:
        counts = stage_counts(session, rules)
    names = stage_names(locale, rules)
    for key, count in counts.items():
        typer.echo(f"{names[key]:<24} {count:>10}")


@lifecycle_app.command()
def history(customer_id: int = typer.Argument(..., help="The customer's id.")) -> None:
    """A customer's stage moves, oldest first, with the rule behind each."""
    from clm.lib.errors import NotFound
    from clm.lifecycle.service import stage_history

    with _session() as session:
        try:
            changes = stage_history(session, customer_id)
        except NotFound as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    for c in changes:
        typer.echo(f"{c.changed_at:%Y-%m-%d %H:%M}  {c.from_stage or '-':<14} -> {c.to_stage:<14} ({c.rule})")
