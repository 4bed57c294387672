"""Public links in messages: open pixel, click redirect, one-click unsubscribe, preference page.

No login: each URL carries a signed token (clm.channels.tracking). These routes are outside the
dashboard's CSRF check on purpose: RFC 8058's one-click POST comes from the mail provider with no
cookie and no token, and the signed URL itself is what identifies the recipient. The answers never
redirect a POST (a browser would turn it into a GET) and a GET never unsubscribes (mail scanners
fetch links).
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from clm.channels import tracking
from clm.db.engine import for_writing
from clm.web import i18n
from clm.web.deps import get_session
from clm.web.pages.base import _env

router = APIRouter(include_in_schema=False)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _page(request: Request, page: str, status: int = 200, locale: str | None = None, **context) -> HTMLResponse:
    locale = locale if locale in i18n.LOCALES else i18n.pick_locale(request)
    context.setdefault("channel", None)
    html = _env.get_template("channels/public.html").render(page=page, locale=locale, t=i18n.translator(locale),
                                                            **context)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def _bad(request: Request) -> HTMLResponse:
    return _page(request, "bad", status=400)


def _settings(request: Request):
    return request.app.state.settings


@router.get("/t/o/{token}.gif")
def open_pixel(request: Request, token: str, db: Session = Depends(get_session)) -> Response:
    try:
        message_id = tracking.message_id_of(tracking.secret(_settings(request)), "o", token)
    except tracking.BadLink:
        return Response(status_code=400, headers=NO_STORE)
    for_writing(db)
    tracking.record_open(db, message_id)
    db.commit()
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}")
def click(request: Request, token: str, db: Session = Depends(get_session)) -> Response:
    try:
        message_id, url = tracking.click_target(_settings(request), token)
    except tracking.BadLink:
        return _bad(request)
    for_writing(db)
    tracking.record_click(db, message_id, url)
    db.commit()
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


def _message_id(request: Request, kind: str, token: str) -> int | None:
    try:
        return tracking.message_id_of(tracking.secret(_settings(request)), kind, token)
    except tracking.BadLink:
        return None


def _preferences_url(request: Request, message_id: int) -> str:
    from clm.channels.tracking import Links

    return Links(_settings(request), message_id).preferences()


@router.get("/t/u/{token}")
def unsubscribe_page(request: Request, token: str, db: Session = Depends(get_session)) -> HTMLResponse:
    """A page with a button: a GET never unsubscribes (link scanners fetch every URL in a mail)."""
    message_id = _message_id(request, "u", token)
    message = db.get(tracking.Message, message_id) if message_id is not None else None
    if message is None:
        return _bad(request)
    return _page(request, "unsubscribe", locale=message.locale, channel=message.channel,
                 preferences_url=_preferences_url(request, message.id))


@router.post("/t/u/{token}")
def unsubscribe(request: Request, token: str, db: Session = Depends(get_session)) -> HTMLResponse:
    """RFC 8058 one-click (the mail provider POSTs List-Unsubscribe=One-Click), and the page's button.
    Answers 200, never a redirect; a repeat changes nothing."""
    message_id = _message_id(request, "u", token)
    if message_id is None:
        return _bad(request)
    for_writing(db)
    message = tracking.unsubscribe(db, message_id)
    if message is None:
        return _bad(request)
    db.commit()
    return _page(request, "unsubscribed", locale=message.locale, channel=message.channel,
                 preferences_url=_preferences_url(request, message.id))


@router.get("/t/p/{token}")
def preferences_page(request: Request, token: str, db: Session = Depends(get_session)) -> HTMLResponse:
    message_id = _message_id(request, "p", token)
    found = tracking.preferences(db, message_id) if message_id is not None else None
    if found is None:
        return _bad(request)
    message, choices = found
    return _page(request, "preferences", locale=message.locale, choices=choices, saved=False)


@router.post("/t/p/{token}")
async def save_preferences(request: Request, token: str) -> HTMLResponse:
    message_id = _message_id(request, "p", token)
    if message_id is None:
        return _bad(request)
    form = await request.form()
    wanted = {channel: form.get(channel) == "1" for channel in tracking.PREFERENCE_CHANNELS}
    with request.app.state.session_factory() as db:
        for_writing(db)
        saved = tracking.save_preferences(db, message_id, wanted)
        if saved is None:
            return _bad(request)
        message = db.get(tracking.Message, message_id)
        locale = message.locale
        db.commit()
    return _page(request, "preferences", locale=locale, choices=saved, saved=True)
