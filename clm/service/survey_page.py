"""The customer's answer page for a CSAT or NPS question, /s/<token>: no login, the signed link is the key
(clm.service.satisfaction). Vietnamese first (?lang=en switches). A link not signed here is a 404 and an
expired one a 410, neither saying whose it was; a score off the scale is answered 422 with the form again.
Posting again through the same link replaces the answer. The token is in the path: no Referer, no cache.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from clm.channels.tracking import BadLink
from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.service import satisfaction
from clm.service.desk_models import Survey
from clm.web.pages.public import link_locale, render_public

router = APIRouter(include_in_schema=False)


def _key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "service_survey_key", None)
    if key is None:
        key = state.service_survey_key = satisfaction.link_key(state.settings)
    return key


def _page(request: Request, status: int = 200, **context) -> HTMLResponse:
    return render_public(request, "service/survey.html", link_locale(request), status, **context)


def _survey_id(request: Request, token: str) -> int | HTMLResponse:
    try:
        return satisfaction.survey_of_token(_key(request), token, request.app.state.dashboard_clock())
    except satisfaction.ExpiredLink:
        return _page(request, 410, state="expired")
    except BadLink:
        return _page(request, 404, state="bad")


def _scale(kind: str) -> list[int]:
    low, high = satisfaction.SCALE[kind]
    return list(range(low, high + 1))


@router.get("/s/{token}")
def survey_form(token: str, request: Request) -> HTMLResponse:
    found = _survey_id(request, token)
    if isinstance(found, HTMLResponse):
        return found
    with request.app.state.session_factory() as session:
        survey = session.get(Survey, found)
        if survey is None:
            return _page(request, 404, state="bad")
        return _page(request, state="form", survey=survey, scale=_scale(survey.kind), error=None)


@router.post("/s/{token}")
async def survey_answer(token: str, request: Request) -> HTMLResponse:
    found = _survey_id(request, token)
    if isinstance(found, HTMLResponse):
        return found
    form = await request.form()
    score, comment = form.get("score"), form.get("comment")
    now = request.app.state.dashboard_clock()

    def work():
        with request.app.state.session_factory() as session:
            for_writing(session)
            try:
                survey = satisfaction.answer(session, found, score, str(comment or ""), now)
            except NotFound:
                session.rollback()
                return None, None
            except FieldError as exc:
                session.rollback()
                return session.get(Survey, found), exc
            session.commit()
            return survey, None

    survey, error = await run_in_threadpool(work)
    if survey is None:
        return _page(request, 404, state="bad")
    if error is not None:
        return _page(request, 422, state="form", survey=survey, scale=_scale(survey.kind), error=error.field)
    return _page(request, state="thanks", survey=survey)
