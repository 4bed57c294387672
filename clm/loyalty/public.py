"""The member's own page, /m/<token>: no login, the signed link is the key (clm.loyalty.links). Vietnamese
first (?lang=en, or the customer's `locale` trait, switches it), made for a phone.

A link not signed here is answered 404, an expired one 410 with a page saying so; neither says whose
link it was. The token is in the path, so the page sends no Referer and is never cached.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from clm.channels.tracking import BadLink
from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.loyalty.links import ExpiredLink, customer_of, member_key
from clm.loyalty.member_view import member_view
from clm.web.pages.public import link_locale, render_public

router = APIRouter(include_in_schema=False)
ENTRY_KINDS = ("earn", "release", "redeem", "cancel", "expire", "reverse", "return", "adjust", "repay")


def _key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "loyalty_member_key", None)
    if key is None:
        key = state.loyalty_member_key = member_key(state.settings)
    return key


@router.get("/m/{token}")
def member_page(token: str, request: Request) -> HTMLResponse:
    now = request.app.state.dashboard_clock()
    try:
        customer_id = customer_of(_key(request), token, now)
    except ExpiredLink:
        return render_public(request, "loyalty/member_link.html", link_locale(request), 410, expired=True)
    except BadLink:
        return render_public(request, "loyalty/member_link.html", link_locale(request), 404, expired=False)
    session: Session = request.app.state.session_factory()
    try:
        for_writing(session)  # settling and the first visit's referral code write
        try:
            view = member_view(session, customer_id, now)
        except (NotFound, FieldError):
            session.rollback()
            return render_public(request, "loyalty/member_link.html", link_locale(request), 404, expired=False)
        session.commit()
        return render_public(request, "loyalty/my_points.html", link_locale(request, view.customer.traits),
                             view=view, now=now, kinds=ENTRY_KINDS)
    finally:
        session.close()
