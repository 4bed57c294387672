"""The kanban board of a pipeline: a column per stage with its count, value and weighted value, and the
deals as cards. Dragging a card to another column posts the move (CSRF header) and gets the board back;
each card also has a "move to" form, so the board works from the keyboard and without script."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.sales import opportunities as deals
from clm.sales.errors import SalesConflict
from clm.sales.pages.common import customer_names, shared, staff, stage_label
from clm.sales.pipelines import default_pipeline, get_pipeline, list_pipelines
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("sales")
PER_STAGE = 50


def _int(value) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def _board(request: Request, db: Session, user, pipeline_id: int | None, owner_id: int | None,
           error: str | None = None, partial: bool = False, status_code: int = 200):
    locale = i18n.pick_locale(request, user)
    if pipeline_id is None:
        pipeline = default_pipeline(db)
    else:
        try:
            pipeline = get_pipeline(db, pipeline_id)
        except NotFound:
            return not_found_page(request)
    columns = deals.board(db, pipeline.id, owner_id=owner_id, per_stage=PER_STAGE)
    names = customer_names(db, {card.customer_id for column in columns for card in column.cards})
    people = staff(db)
    open_columns = [c for c in columns if c.stage.kind == "open"]
    totals = {"count": sum(c.count for c in open_columns), "value": sum(c.value for c in open_columns),
              "weighted": sum(c.weighted for c in open_columns)}
    return render(request, "sales/_board.html" if partial else "sales/board.html", status_code=status_code,
                  pipeline=pipeline, pipelines=list_pipelines(db), columns=columns, names=names,
                  people=dict(people), staff=people, owner_id=owner_id, error=error, totals=totals,
                  label=lambda stage: stage_label(stage, locale), currency=request.app.state.settings.default_currency,
                  **shared(request, db, user))


@router.get("/sales")
def sales_home(user=Depends(allowed)):
    return RedirectResponse("/sales/board", status_code=303)


@router.get("/sales/board")
def board_page(request: Request, pipeline: str | None = None, owner: str | None = None, user=Depends(allowed),
               db: Session = Depends(get_session)):
    return _board(request, db, user, _int(pipeline), _int(owner))


@router.post("/sales/opportunities/{opportunity_id}/stage")
def move(request: Request, opportunity_id: int, data: dict = Depends(form_data), user=Depends(allowed),
         db: Session = Depends(get_session)):
    """What a drop on a column (or the card's "move to" form) does: move the deal, answer the board again
    (the script swaps it in) or, for a plain form, go back to the board; from the deal's own page
    (`back=deal`), back to that page, a refusal shown there."""
    owner_id = _int(data.get("owner"))
    from_deal = data.get("back") == "deal"
    fetched = request.headers.get("X-Requested-With") == "fetch"
    t = i18n.translator(i18n.pick_locale(request, user))
    error, status_code = None, 200
    for_writing(db)
    try:
        opportunity = deals.move_stage(db, opportunity_id, str(data.get("stage", "")),
                                       reason=str(data.get("reason") or "") or None, user_id=user.id)
        pipeline_id = opportunity.pipeline_id
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except (FieldError, SalesConflict) as exc:
        db.rollback()
        pipeline_id = deals.get_opportunity(db, opportunity_id).pipeline_id
        field = getattr(exc, "field", None)
        error = t("sales.board.refused", message=f"{field}: {exc.message}" if field else exc.message)
        status_code = 409 if isinstance(exc, SalesConflict) else 422
    if from_deal:
        from clm.sales.pages.deal import deal_page

        if error:
            return deal_page(request, db, user, opportunity_id, error=error, status_code=status_code)
        return RedirectResponse(f"/sales/opportunities/{opportunity_id}", status_code=303)
    if fetched:
        return _board(request, db, user, pipeline_id, owner_id, error=error, partial=True, status_code=status_code)
    if error:
        return _board(request, db, user, pipeline_id, owner_id, error=error, status_code=status_code)
    query = {"pipeline": pipeline_id, **({"owner": owner_id} if owner_id else {})}
    return RedirectResponse(f"/sales/board?{urlencode(query)}", status_code=303)


@router.post("/sales/notifications/read")
def notifications_read(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                       db: Session = Depends(get_session)):
    from clm.sales.notifications import mark_read

    for_writing(db)
    mark_read(db, user.id)
    db.commit()
    back = str(data.get("next") or "/sales/board")
    return RedirectResponse(back if back.startswith("/sales/") else "/sales/board", status_code=303)
