"""What a journey's nodes do to one customer: decide a condition, send, update, assign, list.

Every action runs in the step's transaction and takes the idempotency key `journey:<run>:<seq>`
first (clm.jobs.effects); a step that finds the key taken did its effect already and only moves on.
A failure raises: the job is retried with backoff and, after its last attempt, the run is parked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.jobs.effects import record_effect
from clm.journeys import definition as d
from clm.journeys.models import JourneyRun
from clm.lib.errors import NotFound


def effect_key(run: JourneyRun) -> str:
    return f"journey:{run.id}:{run.seq}"


def condition_holds(session: Session, node: d.ConditionNode, customer_id: int, now: datetime, timezone: str) -> bool:
    """The node's segment rule tree, compiled to SQL and asked for this one customer."""
    from clm.segments.compile import members_query
    from clm.segments.lookup import make_context
    from clm.segments.rules import parse_rules

    tree = parse_rules(node.rules)
    query = members_query(tree, make_context(session, now, timezone, scope_ids=[customer_id]))
    return session.scalar(sa.select(sa.exists(query))) is True


def act(session: Session, run: JourneyRun, node: Any, now: datetime, timezone: str, job_id: int | None) -> str:
    """Do the action of `node` for the run's customer once; returns the step's outcome."""
    if not record_effect(session, effect_key(run), job_id):
        return "done before"
    if isinstance(node, d.SendMessageNode | d.WebhookNode):
        return _message(session, run, node, now)
    if isinstance(node, d.UpdateTraitNode):
        from clm.customers.service import update_customer

        update_customer(session, run.customer_id, {"traits": {node.trait: node.value}})
        return "updated"
    if isinstance(node, d.SetStageNode):
        return _set_stage(session, run, node.stage, now)
    if isinstance(node, d.AssignOwnerNode):
        return _assign_owner(session, run, node, now)
    if isinstance(node, d.IssueVoucherNode):
        return _issue_voucher(session, run, node, now)
    if isinstance(node, d.NpsSurveyNode):
        from clm.service.satisfaction import request_nps

        survey = request_nps(session, run.customer_id, effect_key(run), channel=node.channel, settings=None,
                             journey_run_id=run.id, now=now)
        return "survey sent" if survey is not None else "no email or phone to ask on"
    if isinstance(node, d.AddToSegmentNode | d.RemoveFromSegmentNode):
        from clm.segments.service import change_list

        add = [run.customer_id] if isinstance(node, d.AddToSegmentNode) else []
        remove = [] if add else [run.customer_id]
        change = change_list(session, node.segment_id, add=add, remove=remove, now=now, timezone=timezone)
        return "changed" if change.entered or change.exited else "unchanged"
    raise TypeError(f"not an action: {node.type}")


def _message(session: Session, run: JourneyRun, node: Any, now: datetime) -> str:
    from clm.channels.service import enqueue_message

    webhook = isinstance(node, d.WebhookNode)
    message = enqueue_message(
        session, customer_id=run.customer_id, channel="webhook" if webhook else node.channel,
        template_key=node.template, purpose="transactional" if webhook else node.purpose,
        idempotency_key=effect_key(run), context=message_context(run),
        journey_id=run.journey_id, journey_run_id=run.id, now=now)
    return f"message {message.status}"


def message_context(run: JourneyRun) -> dict[str, Any]:
    """What a message sent by the run carries: the run's context as `journey`, and the voucher an earlier
    issue_voucher step gave as `voucher` (templates read `{{ voucher.code }}`)."""
    context = dict(run.context or {})
    out: dict[str, Any] = {"journey": context}
    if isinstance(context.get("voucher"), dict):
        out["voucher"] = context["voucher"]
    return out


def _issue_voucher(session: Session, run: JourneyRun, node: d.IssueVoucherNode, now: datetime) -> str:
    """The loyalty reward's voucher for the run's customer, once per step (the effect key is also the
    voucher's idempotency key); kept in the run's context for the messages that follow."""
    from clm.jobs.runner import JobError
    from clm.loyalty import gifts
    from clm.loyalty.ledger import LedgerError
    from clm.loyalty.models import Reward

    try:
        voucher, _ = gifts.give(session, run.customer_id, node.reward_id, idempotency_key=effect_key(run), now=now)
    except NotFound:
        raise JobError(f"node {node.id!r}: loyalty reward {node.reward_id} does not exist", permanent=True) from None
    except LedgerError as exc:  # out of stock or outside its dates: parked until someone fixes the reward
        raise JobError(f"node {node.id!r}: {exc.message}", permanent=True) from None
    run.context = {**dict(run.context or {}),
                   "voucher": gifts.voucher_variables(voucher, session.get(Reward, node.reward_id))}
    session.flush()
    return "voucher issued"


def _set_stage(session: Session, run: JourneyRun, stage: str, now: datetime) -> str:
    from clm.customers.models import Customer
    from clm.lifecycle.evaluate import lock_stages
    from clm.lifecycle.models import StageHistory
    from clm.outbox.service import emit

    lock_stages(session)
    customer = session.get(Customer, run.customer_id, populate_existing=True)
    if customer is None:
        raise NotFound("customer", run.customer_id)
    if customer.lifecycle_stage == stage:
        return "unchanged"
    rule = f"journey:{run.journey_id}"
    session.add(StageHistory(customer_id=customer.id, from_stage=customer.lifecycle_stage, to_stage=stage,
                             rule=rule, changed_at=now, recorded_at=now))
    emit(session, "stage.changed", customer.id, {"customer_id": customer.id, "from": customer.lifecycle_stage,
                                                 "to": stage, "rule": rule, "at": now.isoformat()})
    customer.lifecycle_stage = stage
    session.flush()
    return "moved"


def _assign_owner(session: Session, run: JourneyRun, node: d.AssignOwnerNode, now: datetime) -> str:
    from clm.access.models import User
    from clm.customers.models import Customer
    from clm.outbox.service import emit

    owner_id = node.owner_ids[run.id % len(node.owner_ids)]  # round robin over runs
    user = session.get(User, owner_id)
    if user is None or not user.active:
        from clm.jobs.runner import JobError

        raise JobError(f"staff user {owner_id} does not exist or is inactive", permanent=True)
    customer = session.get(Customer, run.customer_id)
    if customer.owner_id == owner_id:
        return "unchanged"
    customer.owner_id, customer.updated_at = owner_id, now
    emit(session, "customer.updated", customer.id, {"fields": ["owner_id"], "source": f"journey:{run.journey_id}"})
    session.flush()
    return f"owner {owner_id}"
