"""`clm users ...`: staff accounts for the dashboard."""

from __future__ import annotations

import typer

from clm.access.users import LOCALES, ROLES

users_app = typer.Typer(help="Staff users who log in to the dashboard.", no_args_is_help=True)


def _session_factory():
    from clm.config import get_settings
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return make_session_factory(engine)


@users_app.command("create")
def create(
    email: str = typer.Option(..., "--email", help="The address the user logs in with."),
    name: str = typer.Option("", "--name", help="Shown in the dashboard; defaults to the email's local part."),
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}."),
    locale: str = typer.Option(None, "--locale", help=f"Dashboard language ({', '.join(LOCALES)}); "
                               "default: the browser's."),
    password: str = typer.Option(None, "--password", help="Asked for (hidden, twice) when not given; "
                                 "prefer the prompt, since a command line may be logged."),
) -> None:
    """Add a staff user who can log in to the dashboard."""
    from clm.access.users import create_user
    from clm.lib.errors import FieldError

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session_factory()() as session:
        try:
            user = create_user(session, email=email, name=name, role=role, password=password, locale=locale)
        except FieldError as exc:
            raise typer.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
        session.commit()
        typer.echo(f"user {user.id} {user.email} ({user.role}) created; they can log in at /login")


@users_app.command("list")
def list_() -> None:
    """Every staff user with their role and whether they may log in."""
    from rich.console import Console
    from rich.table import Table

    from clm.access.users import list_users

    with _session_factory()() as session:
        users = list_users(session)
    if not users:
        typer.echo("no users yet; add one with: clm users create --email you@example.vn --role admin")
        return
    table = Table("id", "email", "name", "role", "language", "active")
    for u in users:
        table.add_row(str(u.id), u.email, u.name, u.role, u.locale or "-", "yes" if u.active else "no")
    Console().print(table)
