"""`clm service ...`: the desk from a terminal: agents and their availability, the queue, tickets, SLA."""

from __future__ import annotations

import typer

service_app = typer.Typer(help="The service desk: agents, the unassigned queue, tickets and their SLA clocks.",
                          no_args_is_help=True)


def _session():
    from clm.config import get_settings
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return for_writing(make_session_factory(engine)())


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@service_app.command()
def agents() -> None:
    """List agents: availability, open tickets of capacity, teams."""
    from clm.service.agents import list_agents

    with _session() as session:
        rows = list_agents(session)
    if not rows:
        typer.echo("no agents yet: make one with `clm service agent USER_ID --online`")
    for a in rows:
        typer.echo(f"{a.user_id}\t{a.name}\t{a.availability}\t{a.load}/{a.capacity}\tteams {a.teams or '-'}")


@service_app.command()
def agent(
    user_id: int = typer.Argument(..., help="The staff user's id (clm users list)."),
    availability: str = typer.Option(None, "--availability", "-a", help="online, busy or offline."),
    capacity: int = typer.Option(None, "--capacity", "-c", help="Open tickets the agent may hold at once."),
) -> None:
    """Make a staff user an agent or change their availability and capacity (going online drains the queue)."""
    from pydantic import ValidationError

    from clm.lib.errors import FieldError
    from clm.service.agents import AgentIn, save_agent

    try:
        data = AgentIn(availability=availability, capacity=capacity)
    except ValidationError as exc:
        err = exc.errors()[0]
        _fail(f"{'.'.join(map(str, err['loc']))}: {err['msg']}")
    with _session() as session:
        try:
            row = save_agent(session, user_id, data)
        except FieldError as exc:
            _fail(str(exc))
        session.commit()
        typer.echo(f"agent {row.user_id}: {row.availability}, capacity {row.capacity}")


@service_app.command()
def queue(
    drain_now: bool = typer.Option(False, "--drain", help="Assign queued tickets to agents with room first."),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
) -> None:
    """The unassigned queue in the order it is served: VIPs first (when set), priority, oldest."""
    from clm.service.routing import drain
    from clm.service.tickets import list_tickets

    with _session() as session:
        if drain_now:
            typer.echo(f"{drain(session)} tickets assigned")
            session.commit()
        for t in list_tickets(session, view="unassigned", limit=limit):
            typer.echo(f"{t.number}\t{t.priority}\t{t.created_at:%Y-%m-%d %H:%M}\t{t.subject}\t{t.assignment_reason or ''}")


@service_app.command()
def ticket(key: str = typer.Argument(..., help="A ticket's id or number (TK-000123).")) -> None:
    """A ticket: status, assignee and why, SLA clocks with their explanation, its audit."""
    from clm.lib.errors import NotFound
    from clm.service.tickets import find_ticket, ticket_detail

    with _session() as session:
        try:
            t = find_ticket(session, key)
        except NotFound as exc:
            _fail(str(exc))
        detail = ticket_detail(session, t)
        typer.echo(f"{t.number} [{t.status}, {t.priority}] {t.subject}")
        typer.echo(f"customer {t.customer_id}, channel {t.channel}, assignee {t.assignee_id or '-'}: "
                   f"{t.assignment_reason or ''}")
        for timer in detail["timers"]:
            typer.echo(f"  SLA {timer.state}: {timer.explanation.get('text', '')}")
        for c in detail["changes"]:
            who = c.user_id or c.actor
            typer.echo(f"  {c.at:%Y-%m-%d %H:%M} {who} {c.field}: {c.old} -> {c.new} {c.reason or ''}".rstrip())


@service_app.command("chat-site")
def chat_site(
    name: str = typer.Argument(None, help="The site's name; none: list the sites."),
    origin: list[str] = typer.Option([], "--origin", help="An origin allowed to embed the widget, e.g. "
                                                           "https://shop.vn (repeat it; none: any site)."),
    greeting: str = typer.Option(None, "--greeting", help="What the widget says first (Vietnamese)."),
    greeting_en: str = typer.Option(None, "--greeting-en", help="What the widget says first (English)."),
) -> None:
    """Add a web chat site (or change one's origins and greeting) and print its embed snippet."""
    import sqlalchemy as sa

    from clm.config import get_settings
    from clm.lib.errors import FieldError
    from clm.service import chat
    from clm.service.models import ChatSite

    with _session() as session:
        if name is None:
            for site in chat.list_sites(session):
                typer.echo(f"{site.id}\t{site.name}\t{site.public_key}\t{', '.join(site.origins) or 'any origin'}")
            return
        known = session.scalar(sa.select(ChatSite).where(ChatSite.name == name.strip()))
        words = {k: v for k, v in (("vi", greeting), ("en", greeting_en)) if v}
        try:
            site = chat.save_site(session, chat.SiteIn(name=name, origins=origin or (known.origins if known else []),
                                                       greeting=words or (known.greeting if known else {})),
                                  known.id if known else None)
        except FieldError as exc:
            _fail(str(exc))
        session.commit()
        base = get_settings().public_url.rstrip("/")
        typer.echo(f"chat site {site.id} {site.name!r} {'changed' if known else 'added'} "
                   f"(inbox {site.inbox_id}); put this before </body> on its pages:")
        typer.echo(f'<script src="{base}/static/chat-widget.js" data-key="{site.public_key}" data-lang="vi" '
                   'async></script>')


@service_app.command("cti-token")
def cti_token() -> None:
    """Make a new secret for the PBX's Generic CTI endpoint and print its URL (the old one stops working)."""
    from clm.config import get_settings
    from clm.service.calls import new_token

    with _session() as session:
        token = new_token(session)
        session.commit()
    base = get_settings().public_url.rstrip("/")
    typer.echo(f"{base}/hooks/cti/{token}")
    typer.echo("give this URL to the PBX (Zammad's Generic CTI format); it is shown only once")


@service_app.command()
def triggers() -> None:
    """List the automation triggers in the order they run: event, wait, conditions, actions."""
    from clm.service.automation import list_triggers

    with _session() as session:
        rows = list_triggers(session)
    if not rows:
        typer.echo("no triggers yet: add one with `clm service trigger FILE.json`")
    for t in rows:
        wait = (f" after {t.minutes} {'business ' if t.business_hours else ''}min since {t.since}"
                if t.event == "elapsed" else "")
        actions = ", ".join(a["type"] for a in t.actions)
        typer.echo(f"{t.id}\t{t.name}\t{t.event}{wait}\t{'on' if t.active else 'off'}\t{actions}")


@service_app.command()
def trigger(path: str = typer.Argument(..., help="A JSON file: name, event, minutes, since, conditions, actions.")
            ) -> None:
    """Add a trigger from a JSON file, or replace the trigger of the same name (docs/service_automation.md)."""
    import json

    import sqlalchemy as sa
    from pydantic import ValidationError

    from clm.lib.errors import FieldError
    from clm.service.automation import TriggerIn, save_trigger
    from clm.service.desk_models import Trigger

    try:
        with open(path, encoding="utf-8") as f:
            data = TriggerIn.model_validate(json.load(f))
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"{path}: {exc}")
    except ValidationError as exc:
        err = exc.errors()[0]
        _fail(f"{'.'.join(map(str, err['loc']))}: {err['msg']}")
    with _session() as session:
        known = session.scalar(sa.select(Trigger.id).where(Trigger.name == data.name.strip()))
        try:
            row = save_trigger(session, data, known)
        except FieldError as exc:
            _fail(str(exc))
        session.commit()
        typer.echo(f"trigger {row.id} {row.name!r} {'changed' if known else 'added'}")


@service_app.command()
def csat(
    by: str = typer.Option("agent", "--by", help="agent, team or channel."),
    kind: str = typer.Option("csat", "--kind", help="csat or nps."),
    days: int = typer.Option(30, "--days", min=1, max=3650, help="Surveys sent in the last N days."),
) -> None:
    """Satisfaction per agent, team or channel: answers, average, CSAT % (4-5) or NPS, detractors, promoters."""
    from datetime import timedelta

    from clm.lib.clock import utcnow
    from clm.lib.errors import FieldError
    from clm.service.satisfaction import report

    with _session() as session:
        try:
            rows = report(session, kind=kind, by=by, since=utcnow() - timedelta(days=days))
        except FieldError as exc:
            _fail(str(exc))
    typer.echo(f"{by}\tsent\tanswered\taverage\t{'csat %' if kind == 'csat' else 'nps'}\tdetractors\tpromoters")
    for r in rows:
        typer.echo(f"{r.label}\t{r.sent}\t{r.answered}\t{r.average if r.average is not None else '-'}\t"
                   f"{r.satisfied if r.satisfied is not None else '-'}\t{r.detractors}\t{r.promoters}")


@service_app.command()
def calls(missed: bool = typer.Option(False, "--missed", help="Only missed calls."),
          limit: int = typer.Option(20, "--limit", min=1, max=500)) -> None:
    """The caller log, newest first: direction, number, customer, state, duration, agent, call-back task."""
    from clm.service.calls import recent_calls

    with _session() as session:
        rows = recent_calls(session, missed_only=missed, limit=limit)
    for c in rows:
        typer.echo(f"{c.started_at:%Y-%m-%d %H:%M}\t{c.direction}\t{c.phone or c.from_number}\t"
                   f"customer {c.customer_id or '-'}\t{c.state}\t{c.duration_seconds or 0}s\t"
                   f"agent {c.agent_id or '-'}\ttask {c.task_id or '-'}\t{c.recording_url or ''}".rstrip())
