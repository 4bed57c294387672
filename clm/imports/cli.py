"""`clm import customers|orders|events FILE`: bulk imports from CSV or JSON Lines."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

import_app = typer.Typer(
    help="Import customers, orders, events or leads from CSV (UTF-8, Excel's BOM is fine) or JSON Lines.",
    no_args_is_help=True,
)

_MAP_HELP = ("Which column holds one of our fields, as our_field=Their Column (repeatable), e.g. "
             "--map email=E-mail --map phone='Số điện thoại'. Columns named like our fields map themselves.")
_MAPPING_HELP = 'A TOML file of the same pairs: email = "E-mail" (one per line), optionally traits = [...].'
_ERRORS_HELP = "Where to write rejected rows with line numbers and reasons (default: FILE.errors.csv beside FILE)."


def _options():
    return {
        "mapping_pairs": typer.Option(None, "--map", "-m", help=_MAP_HELP),
        "mapping_file": typer.Option(None, "--mapping", help=_MAPPING_HELP),
        "errors": typer.Option(None, "--errors", help=_ERRORS_HELP),
        "chunk_size": typer.Option(2000, "--chunk-size", min=1, max=50_000, help="Rows per transaction."),
    }


_O = _options()
FileArg = typer.Argument(..., help="The .csv or .jsonl file to import.", show_default=False)


@import_app.command("customers")
def import_customers(
    file: Path = FileArg,
    mapping_pairs: list[str] = _O["mapping_pairs"],
    mapping_file: Path = _O["mapping_file"],
    traits: str = typer.Option(None, "--traits", help="Only these columns (comma-separated) become custom "
                                                       "traits; default: every column not mapped to a field."),
    errors: Path = _O["errors"],
    chunk_size: int = _O["chunk_size"],
) -> None:
    """Customers: external_id, email, phone, names, birthday, gender, city, zalo_id, facebook_id; other
    columns become custom traits. Keyed by external id, email and phone: importing again changes nothing."""
    _run("customers", file, mapping_pairs, mapping_file, traits, errors, chunk_size)


@import_app.command("orders")
def import_orders(
    file: Path = FileArg,
    mapping_pairs: list[str] = _O["mapping_pairs"],
    mapping_file: Path = _O["mapping_file"],
    errors: Path = _O["errors"],
    chunk_size: int = _O["chunk_size"],
    currency: str = typer.Option(None, "--currency", help="For rows without one (default CLM_DEFAULT_CURRENCY)."),
) -> None:
    """Orders: order_id, a customer key (external_id, user_id, email or phone), placed_at, total, currency,
    status; optional item columns (sku, product_name, quantity, price) where rows sharing an order_id are
    one order's lines (keep them next to each other). Keyed by order id."""
    _run("orders", file, mapping_pairs, mapping_file, None, errors, chunk_size, currency)


@import_app.command("events")
def import_events(
    file: Path = FileArg,
    mapping_pairs: list[str] = _O["mapping_pairs"],
    mapping_file: Path = _O["mapping_file"],
    properties: str = typer.Option(None, "--properties", help="Only these columns (comma-separated) become "
                                                               "event properties; default: every unmapped one."),
    errors: Path = _O["errors"],
    chunk_size: int = _O["chunk_size"],
) -> None:
    """Events: event, timestamp, user_id / anonymous_id / email / phone, message_id (else a hash of the row),
    properties (a JSON column, plus any other column). Keyed by message id."""
    _run("events", file, mapping_pairs, mapping_file, properties, errors, chunk_size)


@import_app.command("leads")
def import_leads(
    file: Path = FileArg,
    mapping_pairs: list[str] = _O["mapping_pairs"],
    mapping_file: Path = _O["mapping_file"],
    errors: Path = _O["errors"],
    chunk_size: int = _O["chunk_size"],
) -> None:
    """Leads: name, phone and/or email, city, source, campaign, priority, owner_email, message, created_at,
    external_id; other columns are kept with the lead. A known phone or email joins that customer;
    importing again changes nothing (same external_id, or the customer's lead is still open)."""
    _run("leads", file, mapping_pairs, mapping_file, None, errors, chunk_size)


def _run(kind: str, file: Path, pairs: list[str] | None, mapping_file: Path | None, extras: str | None,
         errors: Path | None, chunk_size: int, currency: str | None = None) -> None:
    from clm.config import get_settings
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade
    from clm.imports.mapping import build_mapping
    from clm.imports.readers import ImportFileError, check_path
    from clm.imports.run import import_file

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    settings = get_settings()
    progress = Progress(TextColumn(f"importing {kind}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=err, transient=True)

    def start(total: int):
        task = progress.add_task(kind, total=total)
        return lambda done: progress.update(task, completed=done)

    engine = make_engine(settings.database_url)
    try:
        mapping = build_mapping(kind, pairs, mapping_file, extras)
        check_path(file)
        upgrade(engine)
        with progress:
            outcome = import_file(kind, file, make_session_factory(engine), mapping=mapping, settings=settings,
                                  errors=errors, chunk_size=chunk_size, currency=currency, on_start=start)
    except ImportFileError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    summary = outcome.summary
    out.print(f"{file.name}: {summary.read:,} rows read, {summary.imported:,} imported, "
              f"{summary.unchanged:,} unchanged (already there), {summary.rejected:,} rejected "
              f"in {summary.seconds:.1f} s ({summary.rows_per_s:,.0f} rows/s)", soft_wrap=True)
    if summary.rejected:
        out.print(f"rejected rows, with line numbers and reasons: {outcome.report_path}", soft_wrap=True)
    if summary.failed:
        err.print(f"[red]error:[/red] every row of {file.name} was rejected; see {outcome.report_path}")
        raise typer.Exit(1)
