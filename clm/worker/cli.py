"""`clm worker`: drain the outbox and run periodic jobs until stopped (SIGTERM / Ctrl-C)."""

from __future__ import annotations

import logging
import signal

import typer


def worker(
    once: bool = typer.Option(False, "--once", help="Run one round of every step, then exit."),
) -> None:
    """Run the worker: lifecycle reactions to new facts, and the periodic lifecycle sweep.

    Several workers may run against one PostgreSQL database; each step is claimed by one at a time.
    On SQLite run one (or let `clm serve` run it in-process).
    """
    from clm.config import get_settings
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade
    from clm.worker.loop import Worker
    from clm.worker.steps import build_steps

    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    runner = Worker(make_session_factory(engine), build_steps(settings), settings.worker_poll_seconds)
    if once:
        typer.echo(f"handled {runner.run_round()}")
        return
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    runner.run_forever()
