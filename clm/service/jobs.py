"""The desk's job kinds: SLA warnings and breaches, and re-offering a ticket nobody answered."""

from __future__ import annotations

from sqlalchemy.orm import Session

from clm.jobs.queue import Claimed
from clm.jobs.runner import Registry
from clm.lib.clock import utcnow
from clm.service.routing import REOFFER_KIND
from clm.service.sla import BREACH_KIND, WARN_KIND


def sla_warn_handler(session: Session, job: Claimed) -> None:
    from clm.service.sla import warn

    warn(session, int(job.args["timer_id"]), str(job.args["due_at"]), utcnow())


def sla_breach_handler(session: Session, job: Claimed) -> None:
    from clm.service.sla import breach

    breach(session, int(job.args["timer_id"]), str(job.args["due_at"]), utcnow())


def reoffer_handler(session: Session, job: Claimed) -> None:
    from clm.service.routing import reoffer

    reoffer(session, int(job.args["ticket_id"]), str(job.args["assigned_at"]), utcnow())


def register(registry: Registry, settings) -> None:
    registry.register(WARN_KIND, sla_warn_handler)
    registry.register(BREACH_KIND, sla_breach_handler)
    registry.register(REOFFER_KIND, reoffer_handler)
    from clm.service.automation_steps import register as register_automation

    register_automation(registry, settings)  # service.trigger_elapsed
