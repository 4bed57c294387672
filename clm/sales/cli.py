"""`clm sales score`: retrain the lead-scoring model from won and lost deals and rescore open leads."""

from __future__ import annotations

from datetime import datetime

import typer

sales_app = typer.Typer(help="The sales pipeline: lead scores learned from won and lost deals.",
                        no_args_is_help=True)


def _session():
    from clm.config import get_settings
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return for_writing(make_session_factory(engine)())


@sales_app.command()
def score(
    at: datetime = typer.Option(None, "--at", help="Score as of this time (default: now)."),
    only_new: bool = typer.Option(False, "--only-new", help="Keep the model; score only leads never scored."),
) -> None:
    """Fit the model on won vs lost opportunities (or keep the prior when there are too few), then score
    every open lead, with its reasons, and set classifications not set by hand."""
    from clm.db.engine import for_writing
    from clm.lib.clock import as_utc, utcnow
    from clm.sales.scoring.service import refresh

    with _session() as session:
        def chunk(done: int) -> None:
            session.commit()  # one chunk of leads per transaction
            for_writing(session)

        model, scored = refresh(session, as_utc(at) if at else utcnow(), force=not only_new, on_chunk=chunk)
        session.commit()
    if model is None:
        typer.echo(f"{scored} new leads scored with the current model")
        return
    if model.kind == "prior":
        typer.echo(f"too few closed deals to learn from ({model.won} won, {model.lost} lost; "
                   f"{model.params.get('min_each')} of each needed): scores use the prior")
    else:
        auc = f"{model.auc:.3f}" if model.auc is not None else "n/a"
        typer.echo(f"model learned from {model.won} won and {model.lost} lost deals; holdout AUC {auc}")
    typer.echo(f"{scored} open leads scored")
