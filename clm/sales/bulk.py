"""Bulk changes on leads (the lead list's "assign owner", "change status", "set priority"): the same rules as
one lead's update, applied to each lead in the caller's transaction, so one refusal leaves every lead as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.sales.errors import SalesConflict
from clm.sales.leads import LeadUpdate, update_lead
from clm.sales.models import Lead

MAX_BULK = 500  # a page of the list is 50; a bigger batch is a script's job (the API)


def bulk_update(session: Session, lead_ids: Sequence[int], changes: LeadUpdate,
                now: datetime | None = None) -> list[Lead]:
    """Apply `changes` (owner, status with its reason, priority) to every lead, in id order so that two bulk
    changes at once lock rows in the same order (no deadlock on PostgreSQL). A refusal names the lead and the
    field; the caller rolls back then, and nothing is half-done."""
    ids = sorted(set(lead_ids))
    if not ids:
        raise FieldError("lead_ids", "choose at least one lead")
    if len(ids) > MAX_BULK:
        raise FieldError("lead_ids", f"at most {MAX_BULK} leads at once")
    if not changes.model_fields_set - {"unqualified_reason"}:
        raise FieldError("action", "choose what to change: owner, status or priority")
    if changes.model_fields_set - {"owner_id", "status", "unqualified_reason", "priority"}:
        raise FieldError("action", "only the owner, status and priority change in bulk")
    now = now or utcnow()
    done = []
    for lead_id in ids:
        try:
            done.append(update_lead(session, lead_id, changes, now=now))
        except NotFound:
            raise FieldError("lead_ids", f"lead {lead_id} does not exist") from None
        except FieldError as exc:
            code = session.get(Lead, lead_id).code
            raise FieldError(exc.field, f"{code}: {exc.message}", exc.code) from None
        except SalesConflict as exc:
            code = session.get(Lead, lead_id).code
            message = exc.message if code in exc.message else f"{code}: {exc.message}"
            raise SalesConflict(exc.code, message, exc.field, exc.status) from None
    return done
