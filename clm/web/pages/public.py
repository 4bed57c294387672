"""What the public pages reached by a signed link share (the member's page /m/<token>, the survey answer page
/s/<token>): no login, the token in the path is the key. Templates extend `public_base.html`; Vietnamese
first; the page sends no Referer (the token would leak), is never cached and is kept out of search engines.
"""

from __future__ import annotations

import time

from fastapi import Request
from fastapi.responses import HTMLResponse

from clm.web import i18n
from clm.web.pages.base import _env, add_page_headers

HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def link_locale(request: Request, traits: dict | None = None) -> str:
    """?lang=vi|en, else the customer's `locale` trait, else Vietnamese."""
    wanted = request.query_params.get("lang") or (traits or {}).get("locale")
    return wanted if wanted in i18n.LOCALES else "vi"


def render_public(request: Request, name: str, locale: str, status: int = 200, **context) -> HTMLResponse:
    """A public page in `locale`, with translations (`t`) and formatters (`fmt`)."""
    started = time.perf_counter()
    html = _env.get_template(name).render(t=i18n.translator(locale), locale=locale,
                                          fmt=i18n.Formatter(locale, request.app.state.settings.timezone),
                                          **context)
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    add_page_headers(response, started)
    return response
