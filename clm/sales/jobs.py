"""The sales job kinds: reading a Facebook lead from the Graph API, and a task's reminder."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from clm.jobs.queue import Claimed
from clm.jobs.runner import JobError, Registry
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError

log = logging.getLogger("clm.sales")
FACEBOOK_LEAD = "sales.facebook_lead"
TASK_REMINDER = "tasks.remind"
ZALO_LEAD = "sales.zalo_lead"  # queued by /hooks/zalo (clm.channels.inbound.api) for user_submit_info


def facebook_client(settings):
    """The Graph API client for lead retrieval, or None when no Page token is configured."""
    from clm.sales.providers.facebook import LeadsClient

    token = settings.facebook_leads_page_token or settings.messenger_page_token
    if token is None or not token.get_secret_value():
        return None
    return LeadsClient(token.get_secret_value(), settings.messenger_graph_url, settings.provider_timeout_seconds)


def facebook_lead_handler(settings, client=None):
    """Fetch the lead named by a leadgen webhook and capture it (a lead already captured is left alone)."""
    from clm.channels.adapters.base import PermanentError, TransientError
    from clm.sales.leads import capture_lead
    from clm.sales.providers.facebook import LeadgenChange, lead_in

    def handle(session: Session, job: Claimed) -> None:
        graph = client or facebook_client(settings)
        if graph is None:
            raise JobError("set CLM_FACEBOOK_LEADS_PAGE_TOKEN (or CLM_MESSENGER_PAGE_TOKEN) to read Facebook leads")
        args = job.args
        change = LeadgenChange(str(args["leadgen_id"]), args.get("form_id"), args.get("ad_id"), args.get("page_id"))
        try:
            data = lead_in(graph.fetch(change.leadgen_id), change, settings.default_region)
        except TransientError as exc:
            raise JobError(str(exc)) from None
        except PermanentError as exc:
            raise JobError(str(exc), permanent=True) from None
        try:
            capture_lead(session, data, region=settings.default_region)
        except FieldError as exc:
            raise JobError(f"the lead was refused: {exc}", permanent=True) from None

    return handle


def task_reminder_handler(session: Session, job: Claimed) -> None:
    """Announce the task (outbox) and notify its assignee (else whoever created it) in the dashboard."""
    from clm.sales.models import Task
    from clm.sales.notifications import notify
    from clm.sales.tasks import send_reminder

    now = utcnow()
    if send_reminder(session, int(job.args["task_id"]), job.args.get("remind_at"), now):
        task = session.get(Task, int(job.args["task_id"]))
        person = task.assignee_id or task.created_by_id
        link = f"/sales/leads/{task.lead_id}" if task.lead_id else None
        due = task.due_at.strftime("%Y-%m-%d %H:%M UTC")
        notify(session, f"task:{task.id}:{job.args.get('remind_at')}", [person] if person else [], "task_reminder",
               {"vi": f"Nhắc việc: {task.subject} (hạn {due})", "en": f"Reminder: {task.subject} (due {due})"},
               link, now)


def zalo_lead_handler(settings):
    """A `user_submit_info` event that reached the messaging webhook (/hooks/zalo): capture its lead as
    /hooks/leads/zalo would. Bad contact details will not improve: the job is given up with the reason."""
    from clm.sales.leads import capture_lead
    from clm.sales.providers.zalo import submitted_lead

    def handle(session: Session, job: Claimed) -> None:
        try:
            lead = submitted_lead(job.args.get("event") or {})
        except ValueError as exc:
            raise JobError(f"the Zalo event is malformed: {str(exc).splitlines()[0]}", permanent=True) from None
        if lead is None:
            return
        try:
            capture_lead(session, lead, region=settings.default_region)
        except FieldError as exc:
            raise JobError(f"the lead was refused: {exc}", permanent=True) from None

    return handle


def first_contact_handler(session: Session, job: Claimed) -> None:
    from clm.sales.sla import check_first_contact

    check_first_contact(session, int(job.args["lead_id"]), utcnow())


def register(registry: Registry, settings) -> None:
    from clm.sales.sla import FIRST_CONTACT

    registry.register(FACEBOOK_LEAD, facebook_lead_handler(settings))
    registry.register(TASK_REMINDER, task_reminder_handler, batchable=True)
    registry.register(FIRST_CONTACT, first_contact_handler, batchable=True)
    registry.register(ZALO_LEAD, zalo_lead_handler(settings))
