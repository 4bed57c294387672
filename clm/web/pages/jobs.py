"""The Jobs page: how many jobs each queue holds by state, the dead ones with their last error, and
buttons to retry or cancel them (admin and manager: permission `jobs`). Thin over clm.jobs.queue."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.jobs import queue
from clm.jobs.models import DEAD, RETRYABLE, STATES, Job
from clm.lib.errors import FieldError, NotFound
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("jobs")
SHOWN = 100  # dead and failing jobs listed, newest first


def _listed(db: Session, state: str) -> list[Job]:
    return list(db.scalars(sa.select(Job).where(Job.state == state).order_by(Job.id.desc()).limit(SHOWN)))


@router.get("/jobs")
def jobs_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    counts = queue.stats(db)
    queues = sorted({q for q, _ in counts})
    notice = request.query_params.get("done")
    return render(request, "jobs.html", queues=queues, states=STATES, counts=counts, dead=_listed(db, DEAD),
                  failing=_listed(db, RETRYABLE), notice=notice if notice in ("retried", "cancelled") else None,
                  error=None)


def _act(request: Request, db: Session, job_id: int, action: str):
    for_writing(db)
    try:
        if action == "retried":
            queue.retry_dead(db, job_id)
        else:
            queue.cancel(db, job_id)
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except FieldError as exc:
        db.rollback()
        return render(request, "jobs.html", status_code=422, queues=[], states=STATES, counts={},
                      dead=_listed(db, DEAD), failing=_listed(db, RETRYABLE), notice=None, error=exc.message)
    return RedirectResponse(f"/jobs?done={action}", status_code=303)


@router.post("/jobs/{job_id}/retry")
def retry(request: Request, job_id: int, form: dict = Depends(form_data), user=Depends(allowed),
          db: Session = Depends(get_session)):
    """A dead (or cancelled) job is due again now, with one more attempt."""
    return _act(request, db, job_id, "retried")


@router.post("/jobs/{job_id}/cancel")
def cancel(request: Request, job_id: int, form: dict = Depends(form_data), user=Depends(allowed),
           db: Session = Depends(get_session)):
    """A waiting job is stopped; a dead one is dismissed (pruned with the finished jobs after 7 days)."""
    return _act(request, db, job_id, "cancelled")
